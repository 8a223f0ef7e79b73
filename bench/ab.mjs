// A/B of two builds of the bridge on the same machine at the same time:
// `node bench/ab.mjs --a /path/to/old/dist --b dist [--rounds 6 --seconds 4]`.
// Both run pinned to core 0 (one at a time under load), wrk and the echo
// upstream on core 1; rounds alternate A and B so drift hits both alike.
// Prints the median req/s and CPU µs per request of each.
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { cpuSeconds, startServer } from "./lib/processes.mjs";
import { wrk } from "./lib/load.mjs";

const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string", default: "dist" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "4" },
    connections: { type: "string", default: "64" },
    kind: { type: "string", default: "unary-proto" },
    size: { type: "string", default: "1024" },
  },
});
if (!values.a) throw new Error("--a DIST is required (a copy of an older dist/)");
const here = (path) => new URL(path, import.meta.url).pathname;
const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
const args = ["--upstream", `127.0.0.1:${echo.port}`, "--port", "0", "--cors-origin", "none", "--log-level", "silent"];
const builds = {
  A: await startServer("A", resolve(values.a, "src/cli.js"), { args }),
  B: await startServer("B", resolve(values.b, "src/cli.js"), { args }),
};
const env = { KIND: values.kind, BODY_BYTES: values.size };
const samples = { A: [], B: [] };
for (const name of ["A", "B"]) await wrk({ url: `http://127.0.0.1:${builds[name].port}`, connections: 64, seconds: 10, env });
for (let round = 0; round < Number(values.rounds); round++) {
  for (const name of round % 2 ? ["B", "A"] : ["A", "B"]) {
    const server = builds[name];
    const c0 = cpuSeconds(server.pid);
    const r = await wrk({ url: `http://127.0.0.1:${server.port}`, connections: Number(values.connections), seconds: Number(values.seconds), env });
    const us = ((cpuSeconds(server.pid) - c0) / r.requests) * 1e6;
    samples[name].push({ rps: r.rps, us });
    console.log(`round ${round} ${name}: ${Math.round(r.rps)} req/s, ${us.toFixed(1)} µs CPU/req`);
  }
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const name of ["A", "B"]) {
  console.log(`${name}: median ${Math.round(median(samples[name].map((s) => s.rps)))} req/s, ${median(samples[name].map((s) => s.us)).toFixed(1)} µs CPU/req`);
}
await Promise.all([echo.stop(), builds.A.stop(), builds.B.stop()]);
