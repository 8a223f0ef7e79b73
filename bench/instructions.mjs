// Instructions per call of the bridge, counted by valgrind's callgrind:
// repeatable whatever else runs on the machine (wall-clock and CPU time are
// not, on a shared 2-core box). `node bench/instructions.mjs [--dist dist]
// [--warm 3000 --calls 2000 --concurrency 8 --kind unary-proto --size 1024]
// [--node-args="..."] [--by-function 40]`.
// The bridge runs under callgrind with collection off while `--warm` calls
// let V8 optimise its path, then counts `--calls` calls (client: keep-alive
// node:http, sequential batches of `--concurrency`), then prints Ir per call.
// `--keep DIR` keeps callgrind's files there, for callgrind_annotate.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { request, Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { once } from "node:events";
import { bridgeArgs, startServer } from "./lib/processes.mjs";
import { jitFunctionCounts, removePerfMaps } from "./lib/jit-functions.mjs";

const { values } = parseArgs({
  options: {
    dist: { type: "string", default: "dist" },
    warm: { type: "string", default: "3000" },
    calls: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    kind: { type: "string", default: "unary-proto" },
    size: { type: "string", default: "1024" },
    // thin: count bench/servers/thin-bridge.mjs (unary-proto only), the
    // ceiling issue 15 measures against; or the path of any server script
    // that reads UPSTREAM and prints its port.
    server: { type: "string", default: "bridge" },
    // More bridge flags, split on spaces: `--bridge-args="--metrics --tracing"`.
    "bridge-args": { type: "string", default: "" },
    // Node flags of the counted server, split on spaces: `--node-args=--semi-space-growth-factor=2`.
    "node-args": { type: "string", default: "" },
    // Keep callgrind's output files in this directory (for callgrind_annotate).
    keep: { type: "string" },
    // Also print the N JS functions with the most instructions per call, self
    // and inclusive (the server runs with --perf-basic-prof to name JIT code).
    "by-function": { type: "string" },
  },
});
const here = (path) => new URL(path, import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "bridge-callgrind-"));
const echo = await startServer("echo", here("servers/echo-upstream.mjs"), { cores: "1" });
const thin = values.server !== "bridge";
const served = thin
  ? [values.server === "thin" ? here("servers/thin-bridge.mjs") : resolve(values.server)]
  : [resolve(values.dist, "src/cli.js"), ...bridgeArgs(`127.0.0.1:${echo.port}`), ...values["bridge-args"].split(" ").filter(Boolean)];
const bridge = spawn(
  "valgrind",
  ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${dir}/out.%p`, "--smc-check=all-non-file", process.execPath, ...(values["by-function"] ? ["--perf-basic-prof"] : []), ...values["node-args"].split(" ").filter(Boolean), ...served],
  { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, UPSTREAM: `127.0.0.1:${echo.port}` } },
);
let output = "";
const port = await new Promise((res, rej) => {
  bridge.stdout.on("data", (c) => {
    output += c;
    const m = /listening on https?:\/\/[^\s]*:(\d+)/.exec(output) ?? /^(\d+)\s*$/m.exec(output);
    if (m) res(Number(m[1]));
  });
  bridge.stderr.on("data", (c) => (output += c));
  bridge.once("exit", (code) => rej(new Error(`bridge exited ${code}: ${output}`)));
});

const size = Number(values.size);
const message = Buffer.concat([Buffer.from([0x12]), varint(size - 2 - varint(size - 2).length), Buffer.alloc(size - 2 - varint(size - 2).length, 120)]);
const agent = new Agent({ keepAlive: true, maxSockets: Number(values.concurrency) });
const calls = {
  "unary-proto": { method: "POST", path: "/bridge.test.v1.TestService/Unary", headers: { "content-type": "application/proto", "connect-protocol-version": "1" }, body: message },
  get: { method: "GET", path: `/bridge.test.v1.TestService/Unary?connect=v1&encoding=proto&base64=1&message=${message.toString("base64url")}`, headers: {}, body: undefined },
  "grpc-web": { method: "POST", path: "/bridge.test.v1.TestService/Unary", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]) },
}[values.kind];
if (calls.body && values.kind === "grpc-web") calls.body.writeUInt32BE(message.length, 1);

let failed = 0;
function call() {
  return new Promise((res, rej) => {
    const headers = { ...calls.headers };
    if (calls.body) headers["content-length"] = calls.body.length;
    const req = request({ host: "127.0.0.1", port, agent, method: calls.method, path: calls.path, headers }, (response) => {
      response.resume();
      response.on("end", () => {
        // Counted, not thrown: one 503 (an upstream reconnect under valgrind's
        // slowdown) must not leave the bridge running; the count is printed.
        if (response.statusCode !== 200) failed++;
        res();
      });
    });
    req.on("error", rej);
    req.end(calls.body);
  });
}
async function run(n) {
  const c = Number(values.concurrency);
  for (let i = 0; i < n; i += c) await Promise.all(Array.from({ length: Math.min(c, n - i) }, call));
}
await run(Number(values.warm));
failed = 0;
execFileSync("callgrind_control", ["-i", "on", String(bridge.pid)], { cwd: dir, stdio: "ignore" });
await run(Number(values.calls));
execFileSync("callgrind_control", ["-i", "off", String(bridge.pid)], { cwd: dir, stdio: "ignore" });
bridge.kill("SIGTERM");
await once(bridge, "exit");
await echo.stop();
agent.destroy();
let ir = 0;
const outputs = readdirSync(dir).filter((f) => f.startsWith("out."));
for (const file of outputs) {
  const text = readFileSync(join(dir, file), "utf8");
  const m = /^totals:\s+(\d+)/m.exec(text);
  if (m) ir += Number(m[1]);
}
const split = ir === 0 ? undefined : splitByKind(outputs.map((f) => join(dir, f)));
const pids = outputs.map((f) => f.slice("out.".length));
const byFunction = ir === 0 || !values["by-function"] ? undefined : jitFunctionCounts(outputs.map((f) => join(dir, f)), pids);
removePerfMaps(pids);
if (ir === 0) console.log(`no counts in ${dir}: ${readdirSync(dir)}`);
else if (values.keep) {
  mkdirSync(values.keep, { recursive: true });
  for (const file of readdirSync(dir)) cpSync(join(dir, file), join(values.keep, file));
  rmSync(dir, { recursive: true, force: true });
} else rmSync(dir, { recursive: true, force: true });
console.log(`${thin ? values.server : values.dist}${values["bridge-args"] ? ` ${values["bridge-args"]}` : ""}${values["node-args"] ? ` (node ${values["node-args"]})` : ""} ${values.kind} ${values.size} B: ${(ir / Number(values.calls) / 1000).toFixed(1)} k instructions per call (${values.calls} calls, ${failed} not 200, after ${values.warm} warm-up, node ${process.version})`);
if (split !== undefined) {
  const k = (n) => (n / Number(values.calls) / 1000).toFixed(1);
  console.log(`  of which: mutator ${k(split.mutator)} k (the steadier number), garbage collector ${k(split.gc)} k, optimising compiler ${k(split.compiler)} k`);
}
if (byFunction !== undefined) {
  const top = Number(values["by-function"]);
  const perCall = (n) => String(Math.round(n / Number(values.calls))).padStart(7);
  const total = [...byFunction.self.values()].reduce((a, b) => a + b, 0);
  for (const [heading, counts] of [
    [`JIT code, self instructions per call (${perCall(total).trim()} in all; builtins and C++ they call are not in these):`, byFunction.self],
    ["JIT code, inclusive instructions per call (callees in; overlapping):", byFunction.inclusive],
  ]) {
    console.log(heading);
    for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${perCall(n)}  ${name}`);
  }
}

/**
 * The count split by who executes it, from callgrind_annotate's per-function
 * totals. V8's collector and optimising compiler run when their heuristics
 * say, and valgrind's slow motion moves those: one build's totals spread
 * ~15% between runs, almost all of it GC, while the rest (the mutator: JIT
 * code, builtins, V8's runtime, Node's C++, nghttp2, llhttp, libc) spreads
 * ~1-3%. GC and compiler functions are told apart by V8's C++ names.
 */
function splitByKind(files) {
  let text;
  try {
    text = execFileSync("callgrind_annotate", ["--inclusive=no", "--threshold=100", ...files], { encoding: "utf8", maxBuffer: 1 << 28 });
  } catch {
    return undefined; // callgrind_annotate missing: the total alone
  }
  const gc = /Scaveng|Marking|Sweep|Heap::|heap::|MemoryChunk|Evacuat|SizeFromMap|MarkCompact|RememberedSet|SlotSet|MinorMS|Mark[A-Z]/;
  const compiler = /compiler::|maglev|turboshaft/i;
  const split = { mutator: 0, gc: 0, compiler: 0 };
  for (const line of text.split("\n")) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (m === null || m[2].includes("PROGRAM TOTALS")) continue;
    const count = Number(m[1].replaceAll(",", ""));
    if (gc.test(m[2])) split.gc += count;
    else if (compiler.test(m[2])) split.compiler += count;
    else split.mutator += count;
  }
  return split;
}

function varint(n) {
  const out = [];
  while (n > 127) { out.push((n & 127) | 128); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}
