// The load generators, both C programs from Debian so that they take as
// little of the CPU budget as possible: wrk (HTTP/1.1, Lua script for the
// request bodies) and h2load (HTTP/2: native gRPC, h2c). Each run is pinned
// with taskset to the load core.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const luaScript = new URL("../wrk/bridge.lua", import.meta.url).pathname;

/** Seconds from wrk's "1.23ms" / "456.00us" / "1.10s". */
function wrkSeconds(text) {
  const m = /([\d.]+)(us|ms|s|m)/.exec(text);
  if (!m) return NaN;
  const scale = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[m[2]];
  return Number(m[1]) * scale;
}

/**
 * Runs wrk against `url` with bench/wrk/bridge.lua. `env` selects the body
 * (KIND, BODY_BYTES, PROC, COUNT). Returns requests, rps, latency p50/p99 (s),
 * errors (non-2xx + socket errors).
 */
export async function wrk({ url, connections, seconds, env, core = "1" }) {
  const args = ["-c", core, "wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", luaScript, url];
  const { stdout } = await run("taskset", args, { env: { ...process.env, ...env }, maxBuffer: 1 << 20 });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const duration = wrkSeconds(/requests in ([\d.]+\w+),/.exec(stdout)?.[1] ?? "0s");
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    requests,
    seconds: duration,
    rps: requests / duration,
    p50: wrkSeconds(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? ""),
    p99: wrkSeconds(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? ""),
    errors: non2xx + socketErrors,
    // wrk's own 2 s timeout counts as a socket error: a slow answer, not a failed one.
    non2xx,
    timeouts: socket ? Number(socket[4]) : 0,
    raw: stdout,
  };
}

/**
 * Runs h2load over h2c: `body` is posted on every request with `headers`.
 * Concurrency is spread as a gRPC client would: few connections, many
 * streams each (at most 64 per connection here).
 */
export async function h2load({ url, concurrency, seconds, warmupSeconds, body, headers, core = "1" }) {
  const dir = mkdtempSync(join(tmpdir(), "h2load-"));
  try {
    const dataFile = join(dir, "body.bin");
    const logFile = join(dir, "log.tsv");
    writeFileSync(dataFile, body);
    const clients = Math.ceil(concurrency / 64);
    const streams = Math.ceil(concurrency / clients);
    const args = ["-c", core, "h2load", "-t1", `-c${clients}`, `-m${streams}`, `-D${seconds}`];
    if (warmupSeconds > 0) args.push(`--warm-up-time=${warmupSeconds}`);
    args.push("-d", dataFile, `--log-file=${logFile}`);
    for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
    args.push(url);
    const { stdout } = await run("taskset", args, { maxBuffer: 1 << 20 });
    const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
    const latencies = readFileSync(logFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => Number(line.split("\t")[2]) / 1e6)
      .sort((a, b) => a - b);
    const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    const succeeded = Number(done?.[2] ?? 0);
    return {
      requests: succeeded,
      seconds,
      rps: succeeded / seconds,
      p50: pick(0.5),
      p99: pick(0.99),
      errors: Number(done?.[3] ?? 0) + Number(done?.[4] ?? 0),
      raw: stdout,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A gRPC request frame carrying an EchoRequest of `size` bytes (as bridge.lua builds it). */
export function grpcFrame(size) {
  return envelope(echoRequest(size));
}

/** `message` in an uncompressed gRPC / Connect-streaming envelope. */
export function envelope(message) {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/** bridge.test.v1.EchoRequest with only `payload` set, `size` bytes in all. */
export function echoRequest(size) {
  const varint = (n) => {
    const bytes = [];
    while (n > 127) {
      bytes.push((n & 127) | 128);
      n >>>= 7;
    }
    bytes.push(n);
    return Buffer.from(bytes);
  };
  let payload = size - 2;
  while (1 + varint(payload).length + payload > size) payload--;
  return Buffer.concat([Buffer.from([0x12]), varint(payload), Buffer.alloc(payload, "x")]);
}
