// GC time per call of the bridge under load, from V8's own --trace-gc-nvp lines:
// how much of a call's CPU a heap setting moves, counted in the process
// (steadier on a shared machine than comparing CPU per call across runs).
// `node bench/gc-cost.mjs [--dist dist] [--node-args="--semi-space-growth-factor=2"]
// [--size 64 --connections 256 --seconds 10] [--thin]`.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { bridgeArgs, startServer } from "./lib/processes.mjs";
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
const nodeArgs = ["--trace-gc-nvp", ...values["node-args"].split(" ").filter(Boolean)];
const bridge = values.thin
  ? await startServer("thin", here("servers/thin-bridge.mjs"), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs })
  : await startServer("bridge", resolve(values.dist, "src/cli.js"), {
      args: bridgeArgs(`127.0.0.1:${echo.port}`),
      nodeArgs,
    });
let trace = "";
bridge.stdout.on("data", (chunk) => (trace += chunk));
const env = { KIND: values.kind, BODY_BYTES: values.size };
const url = `http://127.0.0.1:${bridge.port}`;
await wrk({ url, connections: Number(values.connections), seconds: 4, env }); // warm-up
trace = "";
const r = await wrk({ url, connections: Number(values.connections), seconds: Number(values.seconds), env });
// One line per GC: "[pid:addr] 123 ms: pause=1.2 mutator=... gc=s ... promoted=4409552 ...".
// `promoted` is what outlived two scavenges: per-call garbage there means
// something keeps finished calls reachable (src/drain.ts has one such case).
const sum = { s: { n: 0, ms: 0, promoted: 0 }, mc: { n: 0, ms: 0, promoted: 0 } };
for (const line of trace.split("\n")) {
  const kind = / gc=(s|mc) /.exec(line)?.[1];
  if (kind === undefined) continue;
  sum[kind].n++;
  sum[kind].ms += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
  sum[kind].promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
}
const perCall = (ms) => ((ms * 1000) / r.requests).toFixed(2);
console.log(
  `${values.thin ? "thin " : ""}${values["node-args"] || "(defaults)"}: ${r.requests} calls, ${Math.round(r.rps)} req/s; ` +
    `scavenges ${sum.s.n} (${perCall(sum.s.ms)} µs/call, ${Math.round(sum.s.promoted / r.requests)} B/call promoted), ` +
    `full GCs ${sum.mc.n} (${perCall(sum.mc.ms)} µs/call)`,
);
await bridge.stop();
await echo.stop();
