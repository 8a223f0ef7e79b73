#!/usr/bin/env node
/**
 * Fuzzes the bridge with random and mutated requests for a fixed time.
 *
 *   npx tsc -p . && node --expose-gc bench/fuzz.mjs --seconds 60 [--seed 1] [--concurrency 8] [--schema FILE]
 *
 * A @grpc/grpc-js upstream (test/support/grpc-js-server) runs in this process;
 * the bridge (createBridge from dist/src/index.js) runs in a child process, so
 * a crash is seen as the child's exit and RSS is the bridge's own. Valid
 * Connect unary (POST and GET), Connect streaming and gRPC-Web (binary and
 * text) requests are built, then mutated: flipped, truncated or extended
 * bodies, bad envelope flags and lengths, random headers (bad bytes, -bin
 * garbage, timeouts, thousands of them), content types, paths, methods,
 * Content-Length lies, random chunking with pauses, clients that leave
 * mid-body. Most go over raw TCP, some through fetch (keep-alive).
 *
 * Every complete answer must be a success or a well-formed error in the
 * protocol the request spoke: Connect unary JSON error with a valid code and
 * the HTTP status of that code; Connect streaming end-stream frame;
 * gRPC-Web grpc-status (headers or trailer frame). A complete request with no
 * answer, a cut answer, a dead child or a failed health check is a violation.
 * Violations are saved under bench/results/fuzz-findings/ (JSON plus the raw
 * request bytes: `nc 127.0.0.1 PORT < request.bin` against a bridge in front
 * of the same upstream reproduces).
 *
 * Known, documented gaps are counted but not reported as violations:
 * HTTP-parser rejections (400/431) carry Fastify's default JSON body, not a
 * Connect error (see test/integration/hostile-input.test.ts).
 */
import { fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => join(root, "dist", p);

// ------------------------------------------------------------------ parent: the fuzzer

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const seconds = Number(args.seconds ?? 60);
  const seed = Number(args.seed ?? 1);
  const concurrency = Number(args.concurrency ?? 8);
  const outDir = args.out ?? join(root, "bench", "results", "fuzz-findings");

  process.env.GRPC_VERBOSITY ??= "NONE"; // grpc-js logs every metadata value it drops
  const { startGrpcJsServer } = await import(dist("test/support/grpc-js-server.js"));
  const { echoRequest, envelope } = await import(dist("test/support/raw-http.js"));
  const { rawExchange, parseResponse } = await import(dist("test/support/raw-socket.js"));
  const { codeToHttpStatus, codeFromString } = await import("@connectrpc/connect/protocol-connect");

  const upstream = await startGrpcJsServer();
  // --schema FILE: the bridge transcodes JSON with this descriptor set (buf build -o FILE).
  const child = fork(fileURLToPath(import.meta.url), ["--child", upstream.address, ...(args.schema ? [args.schema] : [])], {
    execArgv: [...process.execArgv, "--no-warnings"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  process.on("exit", () => child.kill());
  const warnings = new Map();
  let childExit;
  const memoryWaiters = [];
  const port = await new Promise((resolve, reject) => {
    child.on("message", (m) => {
      if (m.type === "ready") resolve(m.port);
      else if (m.type === "warning") bump(warnings, `${m.name}: ${m.message.replace(/\d+/g, "N")}`);
      else if (m.type === "memory") memoryWaiters.shift()?.(m);
    });
    child.on("exit", (code, signal) => {
      childExit = { code, signal };
      reject(new Error(`bridge exited early: ${code ?? signal}`));
    });
  });
  const memory = () => new Promise((resolve) => {
    memoryWaiters.push(resolve);
    child.send({ type: "memory" });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const svc = "/bridge.test.v1.TestService";

  // Warm up, then the "before" memory figure.
  for (let i = 0; i < 50; i++) await healthCheck();
  const before = await memory();

  const outcomes = new Map();
  const violations = [];
  const signatures = new Map();
  const inFlight = new Set();
  let sent = 0;
  let healthFailures = 0;
  const stopAt = Date.now() + seconds * 1000;

  const health = (async () => {
    while (Date.now() < stopAt && childExit === undefined) {
      await sleep(1000);
      try {
        await healthCheck();
      } catch (error) {
        healthFailures++;
        violation("health-check", { reason: `a normal unary call failed: ${error.message}` });
      }
    }
  })();

  const progress = setInterval(() => {
    const oldest = Math.max(0, ...[...inFlight].map((r) => Date.now() - r.started));
    console.error(`  ... ${sent} sent, ${violations.length} violations, ${inFlight.size} in flight (oldest ${oldest} ms)`);
  }, 5000);
  const workers = Array.from({ length: concurrency }, (_, i) => worker(mulberry32(seed * 1000 + i)));
  // Workers stop at stopAt; one stuck on a request 15 s later is itself a finding.
  const stuck = await Promise.race([
    Promise.all([...workers, health]).then(() => false),
    sleep(seconds * 1000 + 15_000).then(() => true),
  ]);
  clearInterval(progress);
  if (stuck) {
    for (const r of inFlight) violation("fuzzer stuck on a request", { reason: `in flight for ${Date.now() - r.started} ms`, request: describe(r.request) });
  }

  const finishedAt = Date.now();
  let after;
  if (childExit === undefined) {
    for (let i = 0; i < 3; i++) await healthCheck().catch(() => healthFailures++);
    after = await memory();
  }
  child.send?.({ type: "stop" });
  await upstream.close();

  // ---------------------------------------------------------------- report
  mkdirSync(outDir, { recursive: true });
  const summary = {
    seconds,
    seed,
    concurrency,
    requestsSent: sent,
    requestsPerSecond: Math.round(sent / seconds),
    bridgeAlive: childExit === undefined,
    childExit,
    healthFailures,
    violations: violations.length,
    violationKinds: Object.fromEntries(signatures),
    outcomes: Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])),
    bridgeWarnings: Object.fromEntries(warnings),
    memory: {
      gcForced: Boolean(before.gc),
      rssBeforeMiB: mib(before.rss),
      rssAfterMiB: after && mib(after.rss),
      heapBeforeMiB: mib(before.heapUsed),
      heapAfterMiB: after && mib(after.heapUsed),
    },
    finishedAt: new Date(finishedAt).toISOString(),
  };
  writeFileSync(join(outDir, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
  console.log(`fuzz: ${sent} requests in ${seconds} s (${summary.requestsPerSecond}/s), seed ${seed}, concurrency ${concurrency}`);
  console.log(`bridge ${summary.bridgeAlive ? "still up" : `DIED (${JSON.stringify(childExit)})`}; health-check failures: ${healthFailures}`);
  console.log(
    `bridge RSS ${summary.memory.rssBeforeMiB} MiB -> ${summary.memory.rssAfterMiB} MiB, heap ${summary.memory.heapBeforeMiB} -> ${summary.memory.heapAfterMiB} MiB` +
      (before.gc ? " (after forced GC)" : " (no --expose-gc: no forced GC)"),
  );
  console.log("outcomes:");
  for (const [kind, n] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(7)}  ${kind}`);
  if (warnings.size > 0) {
    console.log("process warnings in the bridge:");
    for (const [w, n] of warnings) console.log(`  ${String(n).padStart(7)}  ${w}`);
  }
  console.log(`violations: ${violations.length}`);
  for (const [signature, n] of signatures) console.log(`  ${String(n).padStart(7)}  ${signature}`);
  console.log(`details: ${outDir}`);
  process.exitCode = violations.length > 0 || childExit !== undefined ? 1 : 0;

  // ---------------------------------------------------------------- pieces

  async function healthCheck() {
    const res = await fetch(`${baseUrl}${svc}/Unary`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: echoRequest({ text: "health" }),
      signal: AbortSignal.timeout(3000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || !body.includes(Buffer.from("health"))) throw new Error(`HTTP ${res.status} ${body.toString("latin1").slice(0, 100)}`);
  }

  function violation(kind, details) {
    const n = (signatures.get(kind) ?? 0) + 1;
    signatures.set(kind, n);
    violations.push(kind);
    if (n > 5) return; // keep the first five of each kind
    const id = `${String(violations.length).padStart(4, "0")}-${kind.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}`;
    const { raw, ...rest } = details;
    writeFileSync(join(outDir, `${id}.json`), JSON.stringify({ kind, port, ...rest }, null, 2) + "\n");
    if (raw) writeFileSync(join(outDir, `${id}.request.bin`), raw);
  }

  async function worker(random) {
    mkdirSync(outDir, { recursive: true });
    while (Date.now() < stopAt && childExit === undefined) {
      const request = mutate(random, baseRequest(random));
      const token = { request, started: Date.now() };
      inFlight.add(token);
      try {
        await play(random, request);
      } catch (error) {
        violation("fuzzer-error", { reason: String(error?.stack ?? error), request: describe(request) });
      } finally {
        inFlight.delete(token);
      }
      sent++;
    }
  }

  // A valid request of one of the bridge's protocols.
  function baseRequest(random) {
    const pick = (xs) => xs[Math.floor(random() * xs.length)];
    const message = () =>
      echoRequest({
        text: randomText(random),
        payload: random() < 0.3 ? randomBytes(random, Math.floor(random() * 200)) : new Uint8Array(0),
        responseCount: Math.floor(random() * 3),
        responseSize: random() < 0.1 ? Math.floor(random() * 3000) : 0,
        delayMs: random() < 0.05 ? Math.floor(random() * 20) : 0,
        fail: random() < 0.15 ? { code: 1 + Math.floor(random() * 16), message: randomText(random), withDetails: random() < 0.5 } : undefined,
      });
    const kind = pick(["connect-unary", "connect-unary", "connect-get", "connect-stream", "connect-stream", "grpc-web", "grpc-web-text"]);
    const headers = [];
    let method = "POST";
    let path;
    let body;
    switch (kind) {
      case "connect-unary": {
        path = `${svc}/${pick(["Unary", "Unary", "ServerStream"])}`;
        const gzip = random() < 0.1;
        headers.push(["content-type", random() < 0.9 ? "application/proto" : "application/json"]);
        body = message();
        if (gzip) {
          headers.push(["content-encoding", "gzip"]);
          body = gzipSync(body);
        }
        if (random() < 0.3) headers.push(["connect-protocol-version", "1"]);
        break;
      }
      case "connect-get": {
        method = "GET";
        const msg = message();
        const b64 = random() < 0.5;
        const encoded = b64 ? msg.toString("base64url") : [...msg].map((b) => "%" + b.toString(16).padStart(2, "0")).join("");
        path = `${svc}/Unary?encoding=proto&message=${encoded}${b64 ? "&base64=1" : ""}${random() < 0.5 ? "&connect=v1" : ""}`;
        body = Buffer.alloc(0);
        break;
      }
      case "connect-stream": {
        path = `${svc}/${pick(["ServerStream", "ClientStream", "BidiStream"])}`;
        headers.push(["content-type", "application/connect+proto"]);
        const count = path.endsWith("ServerStream") ? 1 : Math.floor(random() * 4);
        body = Buffer.concat(Array.from({ length: count }, () => envelope(0, message())));
        break;
      }
      default: {
        path = `${svc}/${pick(["Unary", "ServerStream", "ClientStream", "BidiStream"])}`;
        const text = kind === "grpc-web-text";
        headers.push(["content-type", text ? pick(["application/grpc-web-text", "application/grpc-web-text+proto"]) : pick(["application/grpc-web", "application/grpc-web+proto"])]);
        headers.push(["x-grpc-web", "1"]);
        const count = path.endsWith("Unary") || path.endsWith("ServerStream") ? 1 : Math.floor(random() * 4);
        const frames = Array.from({ length: count }, () => envelope(0, message()));
        body = text ? Buffer.from(frames.map((f) => f.toString("base64")).join(""), "latin1") : Buffer.concat(frames);
      }
    }
    if (random() < 0.2) headers.push(["x-echo-k", randomText(random).replace(/[^\x20-\x7e]/g, "")]);
    // A deadline on (almost) every call, in both protocols' headers (each
    // protocol drops the other's): a mutated body may ask the upstream to wait
    // or stream for ever, and the deadline is what bounds a correct answer.
    const withDeadline = random() < 0.9;
    if (withDeadline) headers.push(["connect-timeout-ms", String(deadlineMs)], ["grpc-timeout", `${deadlineMs}m`]);
    return {
      deadline: withDeadline,
      kind,
      transport: random() < 0.25 ? "fetch" : "raw",
      method,
      path,
      headers,
      body,
      framing: random() < 0.2 ? "chunked" : "content-length",
      contentLengthDelta: 0,
      omitLastChunk: false,
      abortAfter: undefined,
      cuts: 1,
      pauseMs: 0,
      mutations: [],
    };
  }

  function mutate(random, req) {
    const pick = (xs) => xs[Math.floor(random() * xs.length)];
    const n = random() < 0.15 ? 0 : 1 + Math.floor(random() * 3);
    for (let i = 0; i < n; i++) {
      const m = pick(mutations);
      req.mutations.push(m);
      switch (m) {
        case "flip-bytes": {
          if (req.body.byteLength === 0) break;
          req.body = Buffer.from(req.body);
          for (let k = 0, flips = 1 + Math.floor(random() * 4); k < flips; k++) req.body[Math.floor(random() * req.body.byteLength)] ^= 1 << Math.floor(random() * 8);
          break;
        }
        case "truncate-body":
          req.body = req.body.subarray(0, Math.floor(random() * req.body.byteLength));
          break;
        case "extend-body":
          req.body = Buffer.concat([req.body, randomBytes(random, 1 + Math.floor(random() * 20))]);
          break;
        case "envelope-flags":
          if (req.body.byteLength > 0) {
            req.body = Buffer.from(req.body);
            req.body[0] = pick([0x01, 0x02, 0x04, 0x80, 0x81, 0xff, Math.floor(random() * 256)]);
          }
          break;
        case "envelope-length":
          if (req.body.byteLength >= 5) {
            req.body = Buffer.from(req.body);
            req.body.writeUInt32BE(pick([0, 1, req.body.byteLength, 0x7fffffff, 0xffffffff, Math.floor(random() * 5000)]), 1);
          }
          break;
        case "base64-garbage": {
          const at = Math.floor(random() * (req.body.byteLength + 1));
          req.body = Buffer.concat([req.body.subarray(0, at), Buffer.from(pick(["*", "=", "==", "A", " ", "\r\n", "\xa0", "-_", "%"]), "latin1"), req.body.subarray(at)]);
          break;
        }
        case "random-body":
          req.body = randomBytes(random, Math.floor(random() * 100));
          break;
        case "content-type":
          req.headers = req.headers.filter(([n]) => n !== "content-type");
          if (random() < 0.9) req.headers.push(["content-type", pick(contentTypes)]);
          break;
        case "path":
          req.path = pick(paths()) + (random() < 0.2 ? "?x=1" : "");
          break;
        case "method":
          req.method = pick(req.transport === "fetch" ? ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] : methods);
          break;
        case "protocol-header":
          req.headers.push([pick(protocolHeaders), pick(protocolValues)]);
          break;
        case "random-header":
          req.headers.push([randomToken(random), randomText(random).replace(/[\r\n\0]/g, "")]);
          break;
        case "bin-header":
          req.headers.push([`x-${randomToken(random)}-bin`, pick(["!!!", "AAAA", "AA==AA", randomText(random).replace(/[\r\n\0]/g, ""), "////", "=="])]);
          break;
        case "bad-header-bytes":
          if (req.transport === "raw") req.headers.push([pick(["x-a", "x-a b", "x\u00e9", "x:a"]), Buffer.from(pick(["a\rb", "a\nb", "a\0b", "caf\xe9", "\x01", "\xff\xfe", "a\r\n b"]), "latin1")]);
          break;
        case "prototype-names":
          req.headers.push([pick(["constructor", "__proto__", "toString", "hasOwnProperty"]), "v"]);
          break;
        case "many-headers": {
          const count = pick([50, 150, 500, 1500, 3000]);
          for (let k = 0; k < count; k++) req.headers.push([`x${k}`, "v"]);
          break;
        }
        case "content-length-short":
          if (req.transport === "raw") {
            req.framing = "content-length";
            req.contentLengthDelta = -1 - Math.floor(random() * Math.max(1, req.body.byteLength));
          }
          break;
        case "content-length-long":
          if (req.transport === "raw") {
            req.framing = "content-length";
            req.contentLengthDelta = 1 + Math.floor(random() * 100);
          }
          break;
        case "no-length":
          if (req.transport === "raw") req.framing = "none";
          break;
        case "chunked-no-end":
          if (req.transport === "raw") {
            req.framing = "chunked";
            req.omitLastChunk = true;
          }
          break;
        case "chunking":
          req.cuts = 2 + Math.floor(random() * 8);
          req.pauseMs = random() < 0.5 ? 0 : 1 + Math.floor(random() * 5);
          if (req.transport === "fetch") req.transport = "raw";
          break;
        case "client-leaves":
          if (req.transport === "raw") req.abortAfter = random();
          break;
      }
    }
    return req;
  }

  async function play(random, req) {
    if (req.transport === "fetch") return playFetch(req);
    const raw = encodeRaw(req);
    const headLength = raw.indexOf("\r\n\r\n") + 4;
    const total = raw.byteLength;
    const complete = req.contentLengthDelta <= 0 && !req.omitLastChunk && req.abortAfter === undefined;
    const cutPoints = Array.from({ length: req.cuts - 1 }, () => Math.floor(random() * total)).sort((a, b) => a - b);
    const steps = [];
    let start = 0;
    let budget = req.abortAfter === undefined ? total : headLength + Math.floor(req.abortAfter * (total - headLength));
    for (const point of [...cutPoints, total]) {
      const end = Math.min(point, budget);
      if (end > start) {
        steps.push(raw.subarray(start, end));
        if (req.pauseMs > 0) steps.push({ delayMs: req.pauseMs });
        start = end;
      }
    }
    if (req.abortAfter !== undefined) steps.push({ delayMs: Math.floor(random() * 20) }, { destroy: true });
    const outcome = await rawExchange(port, steps, { timeoutMs: complete ? deadlineMs + 2000 : 400, maxBytes: maxResponseBytes });
    judge(req, raw, complete, outcome.response, outcome);
  }

  async function playFetch(req) {
    const headers = new Headers();
    try {
      for (const [n, v] of req.headers) headers.append(n, typeof v === "string" ? v : v.toString("latin1"));
    } catch {
      return count("skipped: fetch refuses the headers");
    }
    let res;
    try {
      res = await fetch(`${baseUrl}${req.path}`, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : req.body,
        signal: AbortSignal.timeout(deadlineMs + 2000),
      });
    } catch (error) {
      if (error?.name === "TimeoutError") return judge(req, undefined, true, undefined, { timedOut: true, serverClosed: false, bytes: Buffer.alloc(0) });
      const cause = String(error.cause ?? "");
      if (error instanceof TypeError && !cause.includes("ECONN") && !cause.includes("other side closed")) {
        return count(`skipped: fetch refuses (${error.message.slice(0, 40)})`);
      }
      if (!req.retried) {
        // A kept-alive connection the server had just closed (after an early
        // answer to an earlier request): undici does not retry a POST, we do once.
        req.retried = true;
        count("fetch: connection closed under a reused socket, retried");
        return playFetch(req);
      }
      return judge(req, undefined, true, undefined, { timedOut: false, serverClosed: true, bytes: Buffer.alloc(0), error: String(error.cause ?? error) });
    }
    const chunks = [];
    let size = 0;
    try {
      for await (const chunk of res.body ?? []) {
        chunks.push(chunk);
        size += chunk.byteLength;
        if (size > maxResponseBytes) {
          await res.body.cancel().catch(() => {});
          return judge(req, undefined, true, undefined, { overflowed: true, bytes: Buffer.alloc(0) });
        }
      }
    } catch (error) {
      return judge(req, undefined, true, undefined, { timedOut: error?.name === "TimeoutError", serverClosed: error?.name !== "TimeoutError", bytes: Buffer.concat(chunks), error: String(error) });
    }
    const response = { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.concat(chunks) };
    judge(req, undefined, true, response, { timedOut: false, serverClosed: false, bytes: Buffer.alloc(0) });
  }

  function encodeRaw(req) {
    const head = [`${req.method} ${req.path} HTTP/1.1\r\n`, "host: 127.0.0.1\r\n"];
    const parts = [Buffer.from(head.join(""), "latin1")];
    for (const [n, v] of req.headers) parts.push(Buffer.from(`${n}: `, "latin1"), typeof v === "string" ? Buffer.from(v, "latin1") : v, Buffer.from("\r\n"));
    parts.push(Buffer.from("connection: close\r\n"));
    let body = req.body;
    if (req.framing === "content-length") parts.push(Buffer.from(`content-length: ${Math.max(0, body.byteLength + req.contentLengthDelta)}\r\n`));
    if (req.framing === "chunked") {
      parts.push(Buffer.from("transfer-encoding: chunked\r\n"));
      const chunks = [];
      for (let pos = 0; pos < body.byteLength; pos += 7) {
        const piece = body.subarray(pos, pos + 7 + (pos % 13));
        pos += pos % 13;
        chunks.push(Buffer.from(piece.byteLength.toString(16) + "\r\n"), piece, Buffer.from("\r\n"));
      }
      if (!req.omitLastChunk) chunks.push(Buffer.from("0\r\n\r\n"));
      body = Buffer.concat(chunks);
    }
    parts.push(Buffer.from("\r\n"), body);
    return Buffer.concat(parts);
  }

  /** What the client spoke, as the bridge should see it. */
  function expectation(req) {
    const ct = req.headers.find(([n]) => n.toLowerCase() === "content-type")?.[1]?.toString("latin1");
    const method = req.method;
    if (method === "HEAD") return "head";
    if (method === "CONNECT") return "connection-dropped";
    if (method === "POST" && ct !== undefined && /^application\/grpc-web(-text)?(\+(proto|json))?\s*(;.*)?$/i.test(ct)) return /-text/i.test(ct) ? "grpc-web-text" : "grpc-web";
    if (method === "POST" && ct !== undefined && /^application\/connect\+(proto|json)(\s*;\s*charset\s*=\s*"?utf-?8"?)?$/i.test(ct)) return "connect-stream";
    if (method === "GET" || method === "POST") return "connect-unary";
    return "connect-unary"; // other methods: a Connect error (405)
  }

  function judge(req, raw, complete, response, outcome) {
    const expect = expectation(req);
    const record = (kind) => count(`${expect} ${kind}`);
    const fail = (kind, reason) => {
      record(`VIOLATION ${kind}`);
      violation(`${expect}: ${kind}`, {
        reason,
        request: describe(req),
        raw,
        response: response && { status: response.status, headers: response.headers, body: response.body.toString("latin1").slice(0, 2000) },
        received: outcome.bytes?.toString("latin1").slice(0, 2000),
        outcome: { timedOut: outcome.timedOut, serverClosed: outcome.serverClosed, error: outcome.error },
      });
    };
    if (req.abortAfter !== undefined) return record("client left mid-request");
    if (outcome.overflowed) return record(`response over ${maxResponseBytes} bytes, stopped reading (body asked for it)`);
    if (response !== undefined && isFastifyClientError(response)) {
      return record(`HTTP parser rejection ${response.status} (known: Fastify body, not a Connect error)`);
    }
    if (response !== undefined && isParserRejection(response)) {
      // Node's parser refused the request before any protocol was known: a
      // Connect error is all anyone can send, whatever the client speaks.
      return record(`HTTP parser rejection ${response.status} (Connect error)`);
    }
    if (expect === "head") {
      // No body follows a HEAD answer whatever its Content-Length says, so the
      // parser cannot delimit it: look at the status line, and at what follows the head.
      const text = outcome.bytes?.byteLength ? outcome.bytes.toString("latin1") : response ? `HTTP/1.1 ${response.status} \r\n\r\n` : "";
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1];
      if (status === undefined) return complete ? fail("no answer to HEAD", "") : record("incomplete request: no answer (expected)");
      const rest = text.slice(text.indexOf("\r\n\r\n") + 4);
      if (rest !== "" && !rest.startsWith("HTTP/1.1 ")) return fail("HEAD answered with a body", rest.slice(0, 100));
      return record(`HEAD ${status}`);
    }
    if (response === undefined) {
      if (!complete) return record("incomplete request: no answer (expected)");
      if (expect === "connection-dropped" && outcome.serverClosed) return record("connection dropped (expected for CONNECT)");
      const text = outcome.bytes?.toString("latin1") ?? "";
      const injected = /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n[\s\S]*HTTP\/1\.1 4\d\d /.test(text);
      if (injected) {
        // Bytes after the body (a pipelined request that does not parse) make
        // Fastify's clientError handler write a raw 400 into the response in flight.
        return fail("raw HTTP 400 written into an in-flight response", text.slice(0, 300));
      }
      if (outcome.reset && !(outcome.bytes?.byteLength > 0)) {
        // The server answered early (an error before the whole body was read)
        // and closed (we sent Connection: close) while our bytes kept coming:
        // the kernel resets the connection and drops the unread answer.
        return record("connection reset before the answer was read (inconclusive: early answer, client still sending)");
      }
      // A partial response that the server cut (a stream destroyed mid-way) or nothing at all.
      if (outcome.bytes?.byteLength > 0) {
        try {
          if (parseResponse(outcome.bytes, true)) return fail("unparseable response", "response did not parse");
        } catch {
          /* fall through */
        }
        return fail("response cut off", `${outcome.bytes.byteLength} bytes, then ${outcome.serverClosed ? "close" : "nothing"}`);
      }
      if (outcome.timedOut && !req.deadline) return record("no answer, no deadline set (inconclusive: the body may ask the upstream to wait)");
      return fail(outcome.timedOut ? `no answer within deadline + 2 s` : "connection closed without an answer", "");
    }
    if (isFastifyClientError(response)) return record(`HTTP parser rejection ${response.status} (known: Fastify body, not a Connect error)`);
    if (response.status === 417 && req.headers.some(([n, v]) => n === "expect" && v !== "100-continue")) {
      return record("417 from Node for an unknown Expect (known: not a Connect error)");
    }
    const problem = expect === "connect-unary" ? checkConnectUnary(response) : expect === "connect-stream" ? checkConnectStream(response) : expect.startsWith("grpc-web") ? checkGrpcWeb(response, expect === "grpc-web-text") : `unexpected response to ${expect}`;
    if (typeof problem === "string") return fail(problem.replace(/\d+/g, "N").slice(0, 80), problem);
    record(problem.kind);
  }

  /** The bridge's answer to a request Node's HTTP parser rejected (client-error.ts). */
  function isParserRejection(res) {
    if (![400, 408, 431].includes(res.status) || res.headers.connection !== "close") return false;
    try {
      const json = JSON.parse(res.body.toString("utf8"));
      return ["invalid_argument", "deadline_exceeded", "resource_exhausted"].includes(json.code);
    } catch {
      return false;
    }
  }

  function checkConnectUnary(res) {
    const ct = res.headers["content-type"] ?? "";
    if (res.status === 200) {
      if (!/^application\/[a-z0-9.+-]+$/.test(ct) || ct.startsWith("application/connect+") || ct === "application/json" && looksLikeError(res.body)) return `200 with content-type "${ct}"`;
      return { kind: "ok" };
    }
    if (!/^application\/json\b/.test(ct)) return `HTTP ${res.status} with content-type "${ct}"`;
    let json;
    try {
      json = JSON.parse(res.body.toString("utf8"));
    } catch {
      return `HTTP ${res.status}: error body is not JSON`;
    }
    const code = codeFromString(json?.code ?? "");
    if (code === undefined) return `HTTP ${res.status}: error JSON without a valid code (${res.body.toString("latin1").slice(0, 80)})`;
    if (json.message !== undefined && typeof json.message !== "string") return "error message is not a string";
    if (json.details !== undefined && !Array.isArray(json.details)) return "error details is not a list";
    const allowed = res.status === codeToHttpStatus(code) ||
      (res.status === 431 && json.code === "resource_exhausted") ||
      (res.status === 408 && json.code === "deadline_exceeded") || (res.status === 404 && json.code === "unimplemented") || ((res.status === 415 || res.status === 405) && json.code === "unknown");
    if (!allowed) return `HTTP ${res.status} for code ${json.code}`;
    return { kind: `error ${json.code} (${res.status})` };
  }

  function checkConnectStream(res) {
    const ct = res.headers["content-type"] ?? "";
    if (res.status !== 200) {
      const unary = checkConnectUnary(res);
      return typeof unary === "string" ? `stream answered HTTP ${res.status}: ${unary}` : { kind: `pre-stream ${unary.kind}` };
    }
    if (!/^application\/connect\+[a-z0-9.+-]+$/.test(ct)) return `stream 200 with content-type "${ct}"`;
    const frames = splitFrames(res.body);
    if (typeof frames === "string") return `stream body: ${frames}`;
    const last = frames[frames.length - 1];
    if (last === undefined || last.flags !== 0x02) return "stream without an end-stream frame last";
    if (frames.slice(0, -1).some((f) => f.flags & ~0x01)) return "stream data frame with bad flags";
    let end;
    try {
      end = JSON.parse(last.data.toString("utf8"));
    } catch {
      return "end-stream is not JSON";
    }
    if (end === null || typeof end !== "object") return "end-stream is not an object";
    if (end.error !== undefined && codeFromString(end.error?.code ?? "") === undefined) return "end-stream error without a valid code";
    if (end.metadata !== undefined && (typeof end.metadata !== "object" || Object.values(end.metadata).some((v) => !Array.isArray(v)))) return "end-stream metadata values are not lists";
    return { kind: end.error ? `end-stream ${end.error.code}` : "end-stream ok" };
  }

  function checkGrpcWeb(res, text) {
    const ct = res.headers["content-type"] ?? "";
    if (res.status !== 200) return `gRPC-Web answered HTTP ${res.status} (${res.body.toString("latin1").slice(0, 60)})`;
    if (!/^application\/grpc-web(-text)?\+[a-z0-9.+-]+$/.test(ct)) return `gRPC-Web 200 with content-type "${ct}"`;
    if (text !== ct.includes("-text")) return `gRPC-Web ${text ? "text" : "binary"} request answered as "${ct}"`;
    if (res.headers["grpc-status"] !== undefined) {
      if (!/^(\d|1[0-6])$/.test(res.headers["grpc-status"])) return `bad grpc-status "${res.headers["grpc-status"]}"`;
      if (res.body.byteLength !== 0) return "trailers-only gRPC-Web response with a body";
      return { kind: `status ${res.headers["grpc-status"]} (trailers-only)` };
    }
    let body = res.body;
    if (text) {
      const s = body.toString("latin1");
      if (!/^[A-Za-z0-9+/=]*$/.test(s)) return "text response is not base64";
      body = Buffer.concat((s.match(/[^=]*=*/g) ?? []).filter((x) => x).map((x) => Buffer.from(x, "base64")));
    }
    const frames = splitFrames(body);
    if (typeof frames === "string") return `gRPC-Web body: ${frames}`;
    const last = frames[frames.length - 1];
    if (last === undefined || last.flags !== 0x80) return "gRPC-Web response without a trailer frame";
    if (frames.slice(0, -1).some((f) => f.flags & ~0x01)) return "gRPC-Web data frame with bad flags";
    const status = /^grpc-status: ?(\d+)\r$/m.exec(last.data.toString("latin1"))?.[1];
    if (status === undefined || Number(status) > 16) return "trailer frame without a valid grpc-status";
    return { kind: `status ${status}` };
  }

  function count(kind) {
    bump(outcomes, kind);
  }
}

// ------------------------------------------------------------------ helpers

/** The deadline most requests carry; a complete request must be answered within it + 2 s. */
const deadlineMs = 3000;
/** Responses are read up to this size; a mutated body can ask for endless ones. */
const maxResponseBytes = 1 << 20;

const mutations = [
  "flip-bytes", "truncate-body", "extend-body", "envelope-flags", "envelope-length", "base64-garbage", "random-body",
  "content-type", "path", "method", "protocol-header", "random-header", "bin-header", "bad-header-bytes",
  "prototype-names", "many-headers", "content-length-short", "content-length-long", "no-length", "chunked-no-end",
  "chunking", "chunking", "client-leaves",
];
const contentTypes = [
  "application/proto", "application/json", "application/json; charset=utf-8", "application/connect+proto",
  "application/connect+json", "application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json",
  "application/grpc-web-text", "application/grpc-web-text+proto", "application/grpc", "application/grpc+proto",
  "application/connect+cbor", "application/cbor", "text/plain", "application/xml", "", "application/proto; charset=utf-16",
  "APPLICATION/PROTO", "application/grpc-web+proto; foo=bar", "multipart/form-data; boundary=x",
];
const methods = ["GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "SEARCH", "FOO", "CONNECT"];
const protocolHeaders = [
  "connect-timeout-ms", "grpc-timeout", "connect-protocol-version", "content-encoding", "connect-content-encoding",
  "grpc-encoding", "accept-encoding", "connect-accept-encoding", "grpc-accept-encoding", "x-grpc-web", "te",
  "grpc-status", "grpc-message", "trailer-x", "expect", "upgrade",
];
const protocolValues = ["1", "2", "0", "-1", "abc", "9999999999", "99999999H", "1m", "1n", "100m", "gzip", "br", "identity", "snappy, gzip", "trailers", "", "100-continue", "h2c"];
function paths() {
  const svc = "/bridge.test.v1.TestService";
  return [
    `${svc}/Unary`, `${svc}/ServerStream`, `${svc}/ClientStream`, `${svc}/BidiStream`, `${svc}/NoSuchMethod`,
    "/no.such.Service/Method", "/", "//x", "/a.B/C/D", `${svc}/Unary/`, `/bridge.test.v1.TestService%2FUnary`,
    "/../a.B/C", "/%00", `/a.B/${"C".repeat(3000)}`, "/a.B/%E2%98%83", "*",
  ];
}

function splitFrames(body) {
  const frames = [];
  let pos = 0;
  while (pos < body.byteLength) {
    if (body.byteLength - pos < 5) return "ends inside a frame header";
    const length = body.readUInt32BE(pos + 1);
    if (body.byteLength - pos - 5 < length) return "ends inside a frame";
    frames.push({ flags: body[pos], data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return frames;
}

function isFastifyClientError(res) {
  if (![400, 408, 413, 414, 431, 505].includes(res.status)) return false;
  try {
    const json = JSON.parse(res.body.toString("utf8"));
    return typeof json.error === "string" && typeof json.statusCode === "number" && json.code === undefined;
  } catch {
    return false;
  }
}

function looksLikeError(body) {
  try {
    const json = JSON.parse(body.toString("utf8"));
    return typeof json?.code === "string" && Object.keys(json).every((k) => ["code", "message", "details"].includes(k));
  } catch {
    return false;
  }
}

function describe(req) {
  return {
    transport: req.transport,
    base: req.kind,
    mutations: req.mutations,
    method: req.method,
    path: req.path.length > 200 ? req.path.slice(0, 200) + `... (${req.path.length} chars)` : req.path,
    headers: req.headers.length > 40 ? [...req.headers.slice(0, 40).map(headerText), `... ${req.headers.length} headers`] : req.headers.map(headerText),
    bodyBase64: req.body.toString("base64"),
    framing: req.framing,
    contentLengthDelta: req.contentLengthDelta,
    omitLastChunk: req.omitLastChunk,
    abortAfter: req.abortAfter,
    cuts: req.cuts,
    pauseMs: req.pauseMs,
  };
}

function headerText([n, v]) {
  return `${n}: ${typeof v === "string" ? v : v.toString("latin1")}`;
}

function randomText(random) {
  const alphabets = ["abc xyz", "é☃💩\u0000\r\n", "%+&=?#/", "\ud800"];
  let s = "";
  for (let i = 0, n = Math.floor(random() * 12); i < n; i++) {
    const a = alphabets[random() < 0.8 ? 0 : Math.floor(random() * alphabets.length)];
    s += [...a][Math.floor(random() * [...a].length)];
  }
  return s;
}

function randomToken(random) {
  const chars = "abcdefghijklmnopqrstuvwxyz0123456789-_.";
  let s = chars[Math.floor(random() * 26)];
  for (let i = 0, n = Math.floor(random() * 10); i < n; i++) s += chars[Math.floor(random() * chars.length)];
  return s;
}

function randomBytes(random, n) {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bump(map, key) {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function mib(bytes) {
  return Math.round((bytes / 1048576) * 10) / 10;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) {
      const [name, inline] = argv[i].slice(2).split("=");
      out[name] = inline ?? argv[++i];
    }
  }
  return out;
}

// ------------------------------------------------------------------ entry: the bridge child, or the fuzzer
// (last, so that every module-level constant above is initialised first)

if (process.argv[2] === "--child") {
  const { createBridge } = await import(dist("src/index.js"));
  const schema = process.argv[4] ? { descriptorSets: [process.argv[4]] } : undefined;
  const app = createBridge({ upstream: process.argv[3], schema, fastify: { logger: false } });
  await app.listen({ port: 0, host: "127.0.0.1" });
  process.on("disconnect", () => process.exit(0)); // the fuzzer went away
  process.on("warning", (w) => process.send?.({ type: "warning", name: w.name, message: String(w.message).slice(0, 200) }));
  process.on("message", async (message) => {
    if (message?.type === "memory") {
      if (globalThis.gc) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 200));
        globalThis.gc();
      }
      const usage = process.memoryUsage();
      process.send({ type: "memory", rss: usage.rss, heapUsed: usage.heapUsed, gc: Boolean(globalThis.gc) });
    } else if (message?.type === "stop") {
      app.server.closeAllConnections?.();
      await app.close();
      process.exit(0);
    }
  });
  process.send({ type: "ready", port: app.server.address().port });
} else {
  await main();
}
