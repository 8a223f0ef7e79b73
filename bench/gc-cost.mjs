// GC time per call of the bridge under load, from V8's own --trace-gc lines:
// how much of a call's CPU a heap setting moves, counted in the process
// (steadier on a shared machine than comparing CPU per call across runs).
// `node bench/gc-cost.mjs [--dist dist] [--node-args="--semi-space-growth-factor=2"]
// [--size 64 --connections 256 --seconds 10] [--thin]`.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startServer } from "./lib/processes.mjs";
import { wrk } from "./lib/load.mjs";

const { values } = parseArgs({
  options: {
    dist: { type: "string", default: "dist" },
    "node-args": { type: "string", default: "" },
    size: { type: "string", default: "64" },
    connections: { type: "string", default: "256" },
    seconds: { type: "string", default: "10" },
    kind: { type: "string", default: "unary-proto" },
    // Count bench/servers/thin-bridge.mjs instead: the yardstick's own GC time.
    thin: { type: "boolean", default: false },
  },
});
const here = (path) => new URL(path, import.meta.url).pathname;
const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
const nodeArgs = ["--trace-gc", ...values["node-args"].split(" ").filter(Boolean)];
const bridge = values.thin
  ? await startServer("thin", here("servers/thin-bridge.mjs"), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs })
  : await startServer("bridge", resolve(values.dist, "src/cli.js"), {
      args: ["--upstream", `127.0.0.1:${echo.port}`, "--port", "0", "--cors-origin", "none", "--log-level", "silent", "--drain-delay-ms", "0"],
      nodeArgs,
    });
let trace = "";
bridge.stdout.on("data", (chunk) => (trace += chunk));
const env = { KIND: values.kind, BODY_BYTES: values.size };
const url = `http://127.0.0.1:${bridge.port}`;
await wrk({ url, connections: Number(values.connections), seconds: 4, env }); // warm-up
trace = "";
const r = await wrk({ url, connections: Number(values.connections), seconds: Number(values.seconds), env });
// "[pid:addr]   123 ms: Scavenge 20.1 (30.2) -> 10.3 (31.2) MB, pooled: 0 MB, 1.23 / 0.00 ms ..."
const sum = { Scavenge: { n: 0, ms: 0 }, "Mark-Compact": { n: 0, ms: 0 } };
for (const m of trace.matchAll(/ (Scavenge|Mark-Compact)\b.*?MB,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ ([\d.]+) ms/g)) {
  sum[m[1]].n++;
  sum[m[1]].ms += Number(m[2]);
}
const perCall = (ms) => ((ms * 1000) / r.requests).toFixed(2);
console.log(
  `${values.thin ? "thin " : ""}${values["node-args"] || "(defaults)"}: ${r.requests} calls, ${Math.round(r.rps)} req/s; ` +
    `scavenges ${sum.Scavenge.n} (${perCall(sum.Scavenge.ms)} µs/call), full GCs ${sum["Mark-Compact"].n} (${perCall(sum["Mark-Compact"].ms)} µs/call)`,
);
await bridge.stop();
await echo.stop();
