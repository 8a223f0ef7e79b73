// A/B of two builds of the bridge on the same machine at the same time:
// `node bench/ab.mjs --a /path/to/old/dist --b dist [--rounds 6 --seconds 4 --aa]`.
// Both dists must sit inside a checkout with node_modules (a copy elsewhere
// cannot resolve packages). Each runs pinned to core 0 (one at a time under
// load), wrk and the echo upstream on core 1; rounds rotate the order so
// drift hits all alike. `--aa` adds a second server of build A (A2), so the
// A/A difference (pure noise) is printed beside the A/B one.
// `--thin` adds bench/servers/thin-bridge.mjs (T), the ceiling issue 15 measures
// against, so the B ÷ T ratio comes from the same rounds.
// `--a-node-args` / `--b-node-args` give either side Node flags (same dist on both: a flag A/B);
// `--a-args` / `--b-args` give either side bridge flags (an option A/B, e.g. `--b-args=--metrics`).
// Prints the median req/s and CPU µs per request of each, and B ÷ A.
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { bridgeArgs, cpuSeconds, rateNodeArgs, startServer } from "./lib/processes.mjs";
import { wrk } from "./lib/load.mjs";

const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string", default: "dist" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "4" },
    warmup: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    kind: { type: "string", default: "unary-proto" },
    size: { type: "string", default: "1024" },
    aa: { type: "boolean", default: false },
    thin: { type: "boolean", default: false },
    // More servers in the same rounds, each a script that reads UPSTREAM and
    // prints its port (e.g. bench/servers/thin-fastify.mjs), named by file.
    server: { type: "string", multiple: true, default: [] },
    // Node flags of build A or B, split on spaces, for a runtime-flag A/B
    // with the same dist on both sides: `--b-node-args="--max-semi-space-size=8"`.
    "a-node-args": { type: "string", default: "" },
    "b-node-args": { type: "string", default: "" },
    // Bridge flags of build A or B (also split on spaces), for an option A/B
    // with the same dist on both sides: `--b-args="--metrics"`. A2 takes A's.
    "a-args": { type: "string", default: "" },
    "b-args": { type: "string", default: "" },
  },
});
if (!values.a) throw new Error("--a DIST is required (a copy of an older dist/)");
const here = (path) => new URL(path, import.meta.url).pathname;
const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
const args = bridgeArgs(`127.0.0.1:${echo.port}`);
const split = (flags) => flags.split(" ").filter(Boolean);
const side = (name) => ({ args: [...args, ...split(values[`${name}-args`])], nodeArgs: [...rateNodeArgs, ...split(values[`${name}-node-args`])] });
const builds = {
  A: await startServer("A", resolve(values.a, "src/cli.js"), side("a")),
  B: await startServer("B", resolve(values.b, "src/cli.js"), side("b")),
};
if (values.aa) builds.A2 = await startServer("A2", resolve(values.a, "src/cli.js"), side("a"));
if (values.thin) builds.T = await startServer("T", here("servers/thin-bridge.mjs"), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs: rateNodeArgs });
for (const file of values.server) {
  const name = file.replace(/^.*\//, "").replace(/\.m?js$/, "");
  builds[name] = await startServer(name, resolve(file), { env: { UPSTREAM: `127.0.0.1:${echo.port}` }, nodeArgs: rateNodeArgs });
}
const names = Object.keys(builds);
const env = { KIND: values.kind, BODY_BYTES: values.size };
const samples = Object.fromEntries(names.map((n) => [n, []]));
console.log(`node ${process.version}, ${values.kind} ${values.size} B, c${values.connections}, ${values.rounds} rounds x ${values.seconds} s`);
for (const name of names) await wrk({ url: `http://127.0.0.1:${builds[name].port}`, connections: 64, seconds: Number(values.warmup), env });
for (let round = 0; round < Number(values.rounds); round++) {
  const order = [...names.slice(round % names.length), ...names.slice(0, round % names.length)];
  for (const name of order) {
    const server = builds[name];
    const c0 = cpuSeconds(server.pid);
    const r = await wrk({ url: `http://127.0.0.1:${server.port}`, connections: Number(values.connections), seconds: Number(values.seconds), env });
    const us = ((cpuSeconds(server.pid) - c0) / r.requests) * 1e6;
    samples[name].push({ rps: r.rps, us });
    console.log(`round ${round} ${name}: ${Math.round(r.rps)} req/s, ${us.toFixed(1)} µs CPU/req${r.errors ? `, ${r.errors} errors` : ""}`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (name) => median(samples[name].map((s) => s.us));
for (const name of names) {
  console.log(`${name}: median ${Math.round(median(samples[name].map((s) => s.rps)))} req/s, ${us(name).toFixed(1)} µs CPU/req`);
}
const rps = (name) => median(samples[name].map((s) => s.rps));
console.log(`B/A µs: ${(us("B") / us("A")).toFixed(3)}${values.aa ? `  A2/A µs (A/A noise): ${(us("A2") / us("A")).toFixed(3)}` : ""}`);
if (values.thin) console.log(`B÷T req/s: ${(rps("B") / rps("T")).toFixed(3)}  T÷B µs: ${(us("T") / us("B")).toFixed(3)}  A÷T req/s: ${(rps("A") / rps("T")).toFixed(3)}`);
for (const name of names.slice(values.aa ? 3 : 2).filter((n) => n !== "T")) {
  console.log(`${name}: B÷${name} req/s ${(rps("B") / rps(name)).toFixed(3)}${values.thin ? `  ${name}÷T req/s ${(rps(name) / rps("T")).toFixed(3)}, T÷${name} µs ${(us("T") / us(name)).toFixed(3)}` : ""}`);
}
await Promise.all([echo.stop(), ...names.map((n) => builds[n].stop())]);
