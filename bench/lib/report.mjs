// Turning benchmark rows into ratios, target checks, a markdown report and an
// SVG chart (hand-written: a bar chart is a few dozen lines of SVG, not worth
// a charting dependency).

const baselineNames = {
  direct: "direct gRPC (baseline 1)",
  thin: "thin Node bridge (baseline 2)",
  connect: "connect-fastify proxy (baseline 3)",
  grpcweb: "@grpc-web/proxy (baseline 4)",
  "direct-grpcjs": "direct gRPC to grpc-js",
  "workers-1": "1 worker",
};

/** Rows grouped by scenario, in the order they ran. */
function byScenario(results) {
  const groups = new Map();
  for (const row of results) {
    if (!groups.has(row.scenario)) groups.set(row.scenario, []);
    groups.get(row.scenario).push(row);
  }
  return groups;
}

/** The row a scenario is about: the bridge (or 2 workers), compared with the rest. */
function subjectOf(rows) {
  return rows.find((r) => r.target === "workers-2") ?? rows.find((r) => r.target.startsWith("bridge"));
}

/** The throughput a scenario compares: MB/s for streams, requests/s otherwise. */
const rate = (row) => row.mbPerSecond ?? row.rps;

/**
 * One row per scenario and server: the run with the median throughput when
 * a cell was measured several times, with every run's throughput in `runs`.
 */
export function collapse(results) {
  const groups = new Map();
  for (const row of results) {
    const key = `${row.scenario}\u0000${row.target}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  return [...groups.values()].map((rows) => {
    const sorted = [...rows].sort((a, b) => rate(a) - rate(b));
    return { ...sorted[Math.floor((sorted.length - 1) / 2)], runs: rows.map(rate) };
  });
}

/** [{ scenario, subject, baseline, ratio, addedP50Ms }] for every pair measured together. */
export function ratios(report) {
  const out = [];
  for (const [scenario, rows] of byScenario(collapse(report.results))) {
    const subject = subjectOf(rows);
    if (subject === undefined) continue;
    for (const row of rows) {
      if (row === subject) continue;
      out.push({
        scenario,
        subject,
        baseline: row,
        ratio: rate(row) ? Math.round((rate(subject) / rate(row)) * 100) / 100 : null,
        addedP50Ms: Math.round((subject.p50Ms - row.p50Ms) * 1000) / 1000,
      });
    }
  }
  return out;
}

/** The targets, each with the numbers that decide it. */
export function targetChecks(report) {
  const all = ratios(report);
  const find = (scenario, baseline) => all.find((r) => r.scenario === scenario && r.baseline.target === baseline);
  const checks = [];
  const c64 = "connect unary proto 1KiB c64";
  const vsThin = find(c64, "thin");
  if (vsThin) checks.push({ name: "unary 1 KiB c64 >= 85% of the thin bridge", met: vsThin.ratio >= 0.85, detail: `${vsThin.ratio}x (${vsThin.subject.rps} vs ${vsThin.baseline.rps} req/s)` });
  const vsConnect = find(c64, "connect");
  if (vsConnect) checks.push({ name: "unary 1 KiB c64 >= 2x connect-fastify proxy", met: vsConnect.ratio >= 2, detail: `${vsConnect.ratio}x (${vsConnect.subject.rps} vs ${vsConnect.baseline.rps} req/s)` });
  const vsGrpcWeb = find("grpc-web unary 1KiB c64", "grpcweb");
  if (vsGrpcWeb) checks.push({ name: "gRPC-Web unary 1 KiB c64 >= 2x @grpc-web/proxy", met: vsGrpcWeb.ratio >= 2, detail: `${vsGrpcWeb.ratio}x (${vsGrpcWeb.subject.rps} vs ${vsGrpcWeb.baseline.rps} req/s)` });
  const c1 = find("connect unary proto 1KiB c1", "direct");
  if (c1) checks.push({ name: "unary 1 KiB c1 adds <= 0.3 ms p50 over direct gRPC", met: c1.addedP50Ms <= 0.3, detail: `+${c1.addedP50Ms} ms (${c1.subject.p50Ms} vs ${c1.baseline.p50Ms} ms)` });
  for (const r of all.filter((x) => x.scenario.startsWith("connect server stream") && x.baseline.target === "thin")) {
    checks.push({ name: `${r.scenario} >= 85% of the thin streaming bridge's MB/s`, met: r.ratio >= 0.85, detail: `${r.ratio}x (${r.subject.mbPerSecond} vs ${r.baseline.mbPerSecond} MB/s)` });
  }
  if (report.openStreams) {
    const o = report.openStreams;
    checks.push({ name: "<= 32 KiB RSS per idle open stream", met: o.perStreamKiB <= 32, detail: `${o.perStreamKiB} KiB (${o.streams} streams, ${o.rssBeforeMiB} -> ${o.rssOpenMiB} MiB)` });
  }
  return checks;
}

export function resultsMarkdown(report) {
  const m = report.machine;
  const lines = [
    `# Benchmark results (${report.kind} run, ${report.date})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}. ${report.layout}. ${report.secondsPerMeasurement} s per measurement after a warm-up.`,
    "",
    "## Targets",
    "",
    "| target | met | measured |",
    "|---|---|---|",
    ...report.targets.map((t) => `| ${t.name} | ${t.met ? "yes" : "**no**"} | ${t.detail} |`),
    "",
    "## Bridge ÷ baseline",
    "",
    "Throughput ratio (requests/s; MB/s of payload for streams) and the p50 latency the bridge adds.",
    "",
    "| scenario | baseline | ratio | bridge | baseline | p50 added |",
    "|---|---|---:|---:|---:|---:|",
    ...ratios(report).map(
      (r) =>
        `| ${r.scenario} | ${baselineNames[r.baseline.target] ?? r.baseline.target} | ${r.ratio}x | ${fmtRate(r.subject)} | ${fmtRate(r.baseline)} | ${r.addedP50Ms} ms |`,
    ),
    "",
    "## Every measurement",
    "",
    "Cells measured several times show the median run; `runs` lists every run's throughput, in the order they ran.",
    "",
    "| scenario | server | req/s | MB/s | p50 ms | p99 ms | CPU µs/req | errors | runs |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ...collapse(report.results).map(
      (r) =>
        `| ${r.scenario} | ${r.target} | ${r.rps} | ${r.mbPerSecond ?? ""} | ${r.p50Ms} | ${r.p99Ms} | ${r.cpuUsPerRequest ?? ""} | ${r.errors} | ${r.runs.length > 1 ? r.runs.join(", ") : ""} |`,
    ),
    "",
  ];
  if (report.openStreams) {
    const o = report.openStreams;
    lines.push("## Open streams", "", `${o.streams} idle Connect server streams over h2c (100 per connection), all open in ${o.openMs} ms: bridge RSS ${o.rssBeforeMiB} MiB -> ${o.rssOpenMiB} MiB, **${o.perStreamKiB} KiB per stream** (connections and upstream sessions included).`, "");
  }
  if (report.workers) {
    lines.push("## Workers", "", `--workers 1: ${report.workers.runs[0].rps} req/s; --workers 2: ${report.workers.runs[1].rps} req/s (${report.workers.scaling}x). Both cores shared with wrk and the upstream, so this shows the mechanism, not the scaling a machine with spare cores gets.`, "");
  }
  return lines.join("\n");
}

function fmtRate(row) {
  return row.mbPerSecond !== undefined ? `${row.mbPerSecond} MB/s` : `${row.rps} req/s`;
}

/** Horizontal bars of bridge ÷ baseline, with the 1.0 and 0.85 lines. */
export function ratioChart(report) {
  const rows = ratios(report).filter((r) => r.ratio !== null);
  const barHeight = 18;
  const gap = 6;
  const labelWidth = 470;
  const plotWidth = 380;
  const top = 40;
  const max = Math.max(2.5, ...rows.map((r) => r.ratio));
  const x = (v) => labelWidth + (v / max) * plotWidth;
  const height = top + rows.length * (barHeight + gap) + 48;
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 60}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">connect-grpc-bridge ÷ baseline (throughput), ${esc(report.kind)} run ${esc(report.date.slice(0, 10))}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * (barHeight + gap);
    // Direct gRPC is the floor (no bridge at all): grey, not a verdict. The
    // others are judged against the targets.
    const target = r.baseline.target === "thin" ? 0.85 : r.baseline.target === "connect" || r.baseline.target === "grpcweb" ? 2 : 1;
    const color = r.baseline.target.startsWith("direct") ? "#9e9e9e" : r.ratio >= target ? "#2e7d32" : r.ratio >= 0.85 * target ? "#f9a825" : "#c62828";
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${esc(r.scenario)} vs ${esc(r.baseline.target)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${x(r.ratio) - labelWidth}" height="${barHeight}" fill="${color}"/>`,
      `<text x="${x(r.ratio) + 4}" y="${y + 13}">${r.ratio}x</text>`,
    );
  });
  const bottom = top + rows.length * (barHeight + gap);
  for (const [v, dash, anchor] of [[1, "", "start"], [0.85, ' stroke-dasharray="4 3"', "end"]]) {
    parts.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${bottom}" stroke="black"${dash}/>`);
    parts.push(`<text x="${x(v) + (anchor === "start" ? 3 : -3)}" y="${bottom + 16}" text-anchor="${anchor}">${v}x</text>`);
  }
  parts.push(
    `<text x="10" y="${bottom + 34}" fill="#555">grey: vs direct gRPC (no bridge: the floor); green/amber/red: vs the issue's target for that baseline (thin 0.85x, Node alternatives 2x)</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
