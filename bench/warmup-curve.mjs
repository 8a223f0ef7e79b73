// How a server's CPU cost per call moves over its life: each server under
// continuous load from its start, CPU µs per request (user and system, page
// faults) printed per window; `--idle S` then leaves it without load for S
// seconds and measures again. It showed why the full run's A/A server read
// 10-40% slower than the same build: after an idle spell V8's memory
// reducer leaves a process ~8% slower per call for minutes, which
// `--node-args=--no-memory-reducer` avoids (docs/architecture.md, "Idle spells").
// `node bench/warmup-curve.mjs [--dist dist] [--server bridge --server thin] [--seconds 30] [--window 5] [--idle 120] [--connections 64] [--size 1024] [--node-args="--trace-gc"]`
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { bridgeArgs, rssBytes, startServer } from "./lib/processes.mjs";
import { wrk } from "./lib/load.mjs";

const { values } = parseArgs({
  options: {
    dist: { type: "string", default: "dist" },
    seconds: { type: "string", default: "120" },
    window: { type: "string", default: "5" },
    connections: { type: "string", default: "64" },
    size: { type: "string", default: "1024" },
    // "bridge" (the dist), "thin" or "thin-fastify"; several run one after the other.
    server: { type: "string", multiple: true, default: ["bridge", "thin"] },
    "node-args": { type: "string", default: "" },
    // Then this long with no load, and the curve again: what an idle spell
    // between cells (the A/A server's, in the full run) does to the cost.
    idle: { type: "string", default: "0" },
  },
});
const here = (path) => new URL(path, import.meta.url).pathname;
const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
const upstream = `127.0.0.1:${echo.port}`;
const nodeArgs = values["node-args"].split(" ").filter(Boolean);
const env = { KIND: "unary-proto", BODY_BYTES: values.size };
const windows = Math.ceil(Number(values.seconds) / Number(values.window));

/** User and system CPU seconds and minor page faults of one process (no descendants: the CLI does not fork unless --workers). */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100, faults: Number(f[7]) };
}

const curves = {};
for (const name of values.server) {
  const server =
    name === "bridge"
      ? await startServer(name, resolve(values.dist, "src/cli.js"), {
          args: bridgeArgs(upstream),
          nodeArgs,
        })
      : await startServer(name, here(`servers/${name === "thin" ? "thin-bridge" : name}.mjs`), { env: { UPSTREAM: upstream }, nodeArgs });
  // With --trace-gc among the node args: scavenges per 1000 calls and their
  // milliseconds per 1000 calls, per window (V8 prints one line per GC).
  const gc = { count: 0, ms: 0 };
  let partial = "";
  server.stdout.on("data", (chunk) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop();
    for (const line of lines) {
      const m = /Scavenge .* ([\d.]+) \/ [\d.]+ ms/.exec(line);
      if (m) {
        gc.count++;
        gc.ms += Number(m[1]);
      }
    }
  });
  const curve = (curves[name] = []);
  const idleWindow = Number(values.idle) > 0 ? windows : -1;
  for (let i = 0; i < (idleWindow > 0 ? 2 * windows : windows); i++) {
    if (i === idleWindow) {
      console.log(`${name.padEnd(13)} idle for ${values.idle} s`);
      curve.push("|");
      const rssBefore = rssBytes(server.pid);
      await new Promise((r) => setTimeout(r, Number(values.idle) * 1000));
      const mib = (b) => (b / 1048576).toFixed(1);
      console.log(`${name.padEnd(13)} RSS ${mib(rssBefore)} MiB under load, ${mib(rssBytes(server.pid))} MiB after the idle spell`);
    }
    const usageBefore = usage(server.pid);
    gc.count = 0;
    gc.ms = 0;
    const r = await wrk({ url: `http://127.0.0.1:${server.port}`, connections: Number(values.connections), seconds: Number(values.window), env });
    const usageAfter = usage(server.pid);
    const us = ((usageAfter.user + usageAfter.sys - usageBefore.user - usageBefore.sys) * 1e6) / r.requests;
    const per = (k, scale) => (((usageAfter[k] - usageBefore[k]) * scale) / r.requests).toFixed(1);
    const split = ` (user ${per("user", 1e6)}, sys ${per("sys", 1e6)}; ${per("faults", 1000)} page faults per 1000 calls)`;
    curve.push(Math.round(us * 10) / 10);
    const scavenges = gc.count > 0 ? `  scavenges ${((gc.count * 1000) / r.requests).toFixed(2)} (${((gc.ms * 1000) / r.requests).toFixed(1)} ms) per 1000 calls` : "";
    console.log(`${name.padEnd(13)} ${String((i + 1) * Number(values.window)).padStart(4)} s  ${String(Math.round(r.rps)).padStart(6)} req/s  ${us.toFixed(1)} µs CPU/req${split}${scavenges}`);
  }
  await server.stop();
}
for (const [name, curve] of Object.entries(curves)) console.log(`${name}: ${curve.join(" ")}`);
await echo.stop();
