// `npm run bench:profile [-- --seconds 10 --connections 64 --kind unary-proto --size 1024
//   --proc /bridge.test.v1.TestService/ServerStream --count 1024 --cluster]`:
// the bridge (CLI, pinned to core 0) under wrk load with `node --cpu-prof`.
// Writes bench/results/profile/bridge.cpuprofile (open it in Chrome DevTools'
// Performance panel or https://www.speedscope.app for the flame graph) and
// prints the functions with the most self time, grouped by module.
import { mkdirSync, readdirSync, readFileSync, rmSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { startServer, writeClusterConfig } from "./lib/processes.mjs";
import { wrk } from "./lib/load.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    kind: { type: "string", default: "unary-proto" },
    size: { type: "string", default: "1024" },
    top: { type: "string", default: "30" },
    proc: { type: "string", default: "/bridge.test.v1.TestService/Unary" },
    count: { type: "string", default: "1" },
    cluster: { type: "boolean", default: false },
    // thin: profile bench/servers/thin-bridge.mjs instead, to see which work
    // the bridge does that the ceiling does not; or the path of any server
    // script that reads UPSTREAM and prints its port (bench/servers/thin-fastify.mjs).
    server: { type: "string", default: "bridge" },
    // More bridge flags, split on spaces: `--bridge-args="--metrics --tracing"`.
    "bridge-args": { type: "string", default: "" },
  },
});
const here = (path) => new URL(path, import.meta.url).pathname;
const dir = here("results/profile");
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
// --cluster: through a config-file cluster and route instead of --upstream.
let target = ["--upstream", `127.0.0.1:${echo.port}`];
if (values.cluster) {
  target = ["--config", writeClusterConfig(dir, `127.0.0.1:${echo.port}`)];
}
const nodeArgs = ["--cpu-prof", `--cpu-prof-dir=${dir}`];
const bridge =
  values.server === "thin"
    ? await startServer("thin", here("servers/thin-bridge.mjs"), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs })
    : values.server !== "bridge"
    ? await startServer("server", resolve(values.server), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs })
    : await startServer("bridge", here("../dist/src/cli.js"), {
        args: [...target, "--port", "0", "--cors-origin", "none", "--log-level", "silent", "--drain-delay-ms", "0", ...values["bridge-args"].split(" ").filter(Boolean)],
        nodeArgs,
      });
const env = { KIND: values.kind, BODY_BYTES: values.size, PROC: values.proc, COUNT: values.count };
const url = `http://127.0.0.1:${bridge.port}`;
await wrk({ url, connections: Number(values.connections), seconds: 2, env });
const result = await wrk({ url, connections: Number(values.connections), seconds: Number(values.seconds), env });
await bridge.stop();
await echo.stop();

const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
renameSync(`${dir}/${file}`, `${dir}/bridge.cpuprofile`);
const profile = JSON.parse(readFileSync(`${dir}/bridge.cpuprofile`, "utf8"));
const interval = (profile.endTime - profile.startTime) / profile.samples.length;
const selfSamples = new Map(profile.nodes.map((n) => [n.id, 0]));
for (const id of profile.samples) selfSamples.set(id, selfSamples.get(id) + 1);
const byFunction = new Map();
let total = 0;
for (const node of profile.nodes) {
  const f = node.callFrame;
  const where = f.url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*\/dist\//, "dist/") || "(native)";
  const key = `${f.functionName || "(anonymous)"}  ${where}:${f.lineNumber + 1}`;
  const samples = selfSamples.get(node.id);
  total += samples;
  byFunction.set(key, (byFunction.get(key) ?? 0) + samples);
}
const idle = [...byFunction].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
const busy = total - idle;
const lines = [
  `${result.requests} requests (${result.errors} errors) at ${Math.round(result.rps)} req/s; ${((busy * interval) / result.requests).toFixed(0)} µs of sampled CPU per request`,
  "self time (share of non-idle samples):",
  ...[...byFunction]
    .filter(([k]) => !k.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(values.top))
    .map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`),
];
writeFileSync(`${dir}/top.txt`, lines.join("\n") + "\n");
console.log(lines.join("\n"));
console.log(`\nprofile: ${dir}/bridge.cpuprofile`);
