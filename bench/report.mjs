// Rewrites a results file's markdown and chart from its JSON (after a change
// to the report format): `node bench/report.mjs bench/results/full.json`.
import { readFileSync, writeFileSync } from "node:fs";
import { ratioChart, resultsMarkdown, targetChecks } from "./lib/report.mjs";

const file = process.argv[2] ?? new URL("results/full.json", import.meta.url).pathname;
const report = JSON.parse(readFileSync(file, "utf8"));
report.targets = targetChecks(report);
writeFileSync(file.replace(/\.json$/, ".md"), resultsMarkdown(report));
writeFileSync(file.replace(/\.json$/, ".svg"), ratioChart(report));
console.log(`rewrote ${file.replace(/\.json$/, ".{md,svg}")}`);
