// Upstream h2c client probe for the Connect->gRPC bridge.
// Usage: node bench/upstream-client-probe/probe.mjs
// Env knobs (optional): DURATION_MS (5000), WARMUP_MS (1000), LAT_MS (3000), CONC (64)
//
// Measures unary gRPC-over-h2c throughput/latency for three clients and runs
// small behavioural experiments (RST_STREAM visibility, trailers, full duplex).
import { fork } from 'node:child_process';
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { H2CClient } from 'undici';
import { Http2SessionManager } from '@connectrpc/connect-node';

const DURATION_MS = Number(process.env.DURATION_MS ?? 5000);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 1000);
const LAT_MS = Number(process.env.LAT_MS ?? 3000);
const CONC = Number(process.env.CONC ?? 64);

const ECHO_PATH = '/test.v1.TestService/Echo';
// Headers common to every call; :method/:path are added per client.
const GRPC_HEADERS = { 'content-type': 'application/grpc', te: 'trailers' };

function envelope(payload) {
  const buf = Buffer.allocUnsafe(5 + payload.length);
  buf[0] = 0;
  buf.writeUInt32BE(payload.length, 1);
  payload.copy(buf, 5);
  return buf;
}
const MSG = envelope(Buffer.alloc(1024, 0x62)); // 1029-byte envelope

// ---------------------------------------------------------------- server ---
// Forked so the server has its own event loop (and, on 2 cores, its own core).
const child = fork(new URL('./server.mjs', import.meta.url));
const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
const origin = `http://127.0.0.1:${port}`;

// --------------------------------------------------------------- clients ---
// Every client exposes call(path, body, opts) -> {status, body, trailers}.
// opts.slow: consume the response slowly (backpressure), opts.duplex: write
// one message, wait for the first echoed chunk, then write another and end.

// Shared by node:http2 and Http2SessionManager, which both hand us a
// ClientHttp2Stream. 'close' is the only event guaranteed to fire last
// (after 'end' or 'error'), so we settle there.
function consumeH2Stream(stream, body, { slow = false, duplex = false, onData } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let status, trailers, error, duplexResult;
    stream.on('response', (h) => { status = h[':status']; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('error', (e) => { error = e; });
    stream.on('data', (c) => {
      chunks.push(c);
      onData?.(stream);
      if (slow) { stream.pause(); setTimeout(() => stream.resume(), 1); }
    });
    stream.on('close', () => {
      const res = { status, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode, duplexResult };
      if (error) { error.rstCode = stream.rstCode; reject(error); } else resolve(res);
    });
    if (!duplex) { stream.end(body); return; }
    // Duplex: response data must arrive while our request side is still open.
    stream.write(body);
    const firstData = new Promise((r) => stream.once('data', () => r('echo-before-end')));
    Promise.race([firstData, sleep(2000).then(() => 'timeout')]).then((r) => {
      duplexResult = r;
      stream.end(body);
    });
  });
}

function nodeHttp2Client() {
  const session = http2.connect(origin);
  session.on('error', () => {}); // surfaced per stream instead
  return {
    call: (path, body, opts) =>
      consumeH2Stream(session.request({ ':method': 'POST', ':path': path, ...GRPC_HEADERS }), body, opts),
    close: () => session.close(),
  };
}

function connectManagerClient() {
  const manager = new Http2SessionManager(origin);
  return {
    call: async (path, body, opts) => {
      const stream = await manager.request('POST', path, GRPC_HEADERS, {});
      // Connect's own transport reports reads so the manager can track idleness.
      return consumeH2Stream(stream, body, { ...opts, onData: (s) => manager.notifyResponseByteRead(s) });
    },
    close: () => manager.abort(),
  };
}

// Duplex request body for undici: yields one message, waits until the caller
// signals that the first response chunk arrived (or 2 s), then yields another.
function duplexBody(body) {
  let signal;
  const firstData = new Promise((r) => { signal = () => r('echo-before-end'); });
  const state = { result: undefined, gotData: () => signal() };
  state.iterable = (async function* () {
    yield body;
    state.result = await Promise.race([firstData, sleep(2000).then(() => 'timeout')]);
    yield body;
  })();
  return state;
}

// undici H2CClient + request(): the convenient API; trailers land on
// `res.trailers` once the body has been fully read.
function undiciRequestClient() {
  const client = new H2CClient(origin, { pipelining: CONC, maxConcurrentStreams: 100 });
  return {
    call: async (path, body, { slow = false, duplex = false } = {}) => {
      const d = duplex ? duplexBody(body) : null;
      const res = await client.request({ path, method: 'POST', headers: GRPC_HEADERS, body: d ? d.iterable : body });
      const chunks = [];
      for await (const c of res.body) {
        chunks.push(c);
        d?.gotData();
        if (slow) await sleep(1);
      }
      return { status: res.statusCode, body: Buffer.concat(chunks), trailers: res.trailers, duplexResult: d?.result };
    },
    close: () => client.close(),
    destroy: () => client.destroy(),
  };
}

// undici H2CClient + dispatch() with the *legacy* handler shape
// (onConnect/onHeaders/onData/onComplete/onError). We use the legacy shape on
// purpose: over h2, onComplete receives Node's trailers object as-is, while the
// v7 onResponseEnd(controller, trailers) shape runs it through parseHeaders(),
// which expects a flat array (see experimentNewApiTrailers below).
function undiciDispatchClient() {
  const client = new H2CClient(origin, { pipelining: CONC, maxConcurrentStreams: 100 });
  return {
    call: (path, body, { slow = false, duplex = false } = {}) => new Promise((resolve, reject) => {
      const d = duplex ? duplexBody(body) : null;
      const chunks = [];
      let status, resume;
      client.dispatch({ path, method: 'POST', headers: GRPC_HEADERS, body: d ? d.iterable : body }, {
        onConnect() {},
        onHeaders(statusCode, _headers, res) { status = statusCode; resume = res; return true; },
        onData(chunk) {
          chunks.push(chunk);
          d?.gotData();
          if (slow) { setTimeout(resume, 1); return false; } // pause, resume later
          return true;
        },
        onComplete(trailers) {
          resolve({ status, body: Buffer.concat(chunks), trailers, duplexResult: d?.result });
        },
        onError: reject,
      });
    }),
    close: () => client.close(),
    destroy: () => client.destroy(),
  };
}

const CLIENTS = {
  'node:http2': nodeHttp2Client,
  'undici H2CClient request()': undiciRequestClient,
  'undici H2CClient dispatch()': undiciDispatchClient,
  'connect-node Http2SessionManager': connectManagerClient,
};

// ------------------------------------------------------------- benchmark ---
const isGood = (res) => res.trailers?.['grpc-status'] === '0' && res.body.length === MSG.length;

async function bench(call, conc, durationMs) {
  let stop = false, measuring = false, ok = 0, bad = 0, firstErr;
  const lat = [];
  const worker = async () => {
    while (!stop) {
      const t0 = performance.now();
      let good = false;
      try { good = isGood(await call(ECHO_PATH, MSG)); } catch (e) { firstErr ??= e; }
      if (!measuring) continue;
      if (good) ok++; else bad++;
      lat.push(performance.now() - t0);
    }
  };
  const workers = Array.from({ length: conc }, worker);
  await sleep(WARMUP_MS);
  measuring = true;
  const t0 = performance.now();
  await sleep(durationMs);
  measuring = false;
  const secs = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  return { rps: ok / secs, ok, bad, p50: pct(0.5), p99: pct(0.99), firstErr: firstErr?.message };
}

// ----------------------------------------------------------- experiments ---
// Describe how a call ended without throwing away detail.
async function outcome(promise) {
  try {
    // A call that never settles is itself a finding; don't hang the probe.
    const r = await Promise.race([promise, sleep(5000).then(() => { throw new Error('no settle within 5 s'); })]);
    return { resolved: true, status: r.status, bodyLen: r.body.length, trailers: r.trailers, rstCode: r.rstCode, duplex: r.duplexResult };
  } catch (e) {
    return { rejected: true, name: e.name, code: e.code, message: e.message, rstCode: e.rstCode };
  }
}

async function experiments(client) {
  const big = 1 << 20; // 1 MiB message -> envelope of big+5 bytes
  return {
    'reset after headers (REFUSED_STREAM=7)': await outcome(client.call('/reset', MSG)),
    'naive reset: HEADERS, END_STREAM, then RST(7)': await outcome(client.call('/reset-naive', MSG)),
    'reset before headers (CANCEL=8)': await outcome(client.call('/reset-before-headers', MSG)),
    'echo after resets (session still usable?)': await outcome(client.call(ECHO_PATH, MSG)),
    [`trailers after 1 MiB body, slow reader (expect bodyLen ${big + 5})`]:
      await outcome(client.call(`/big?n=${big}`, MSG, { slow: true })),
    'duplex: echo seen before request end?': await outcome(client.call('/duplex', MSG, { duplex: true })),
  };
}

// The v7 handler API: show what onResponseEnd's trailers and the undocumented
// controller.rawTrailers contain for an h2 response.
async function experimentNewApiTrailers() {
  const client = new H2CClient(origin);
  const r = await new Promise((resolve, reject) => {
    client.dispatch({ path: ECHO_PATH, method: 'POST', headers: GRPC_HEADERS, body: MSG }, {
      onRequestStart() {},
      onResponseStart() {},
      onResponseData() {},
      onResponseEnd(controller, trailers) { resolve({ trailers, rawTrailers: { ...controller.rawTrailers } }); },
      onResponseError(_c, e) { reject(e); },
    });
  });
  await client.close();
  return r;
}

// ------------------------------------------------------------------ main ---
const results = [];
for (const [name, make] of Object.entries(process.env.SKIP_BENCH ? {} : CLIENTS)) {
  const c1 = make();
  const thr = await bench(c1.call, CONC, DURATION_MS);
  await c1.close();
  const c2 = make();
  const lat = await bench(c2.call, 1, LAT_MS);
  await c2.close();
  results.push({ name, thr, lat });
  console.error(`${name}: ${thr.rps.toFixed(0)} req/s (bad ${thr.bad}${thr.firstErr ? `, err: ${thr.firstErr}` : ''}), ` +
    `c=1 p50 ${lat.p50.toFixed(3)} ms p99 ${lat.p99.toFixed(3)} ms (bad ${lat.bad})`);
}

console.log(`\n| client | req/s @c=${CONC} | failed | p50 ms @c=1 | p99 ms @c=1 |`);
console.log('|---|---:|---:|---:|---:|');
for (const { name, thr, lat } of results) {
  console.log(`| ${name} | ${thr.rps.toFixed(0)} | ${thr.bad + lat.bad} | ${lat.p50.toFixed(3)} | ${lat.p99.toFixed(3)} |`);
}

if (!process.env.SKIP_EXPERIMENTS) {
  console.log('\n## experiments');
  for (const [name, make] of Object.entries(CLIENTS)) {
    const c = make();
    console.log(`\n### ${name}\n${JSON.stringify(await experiments(c), null, 1)}`);
    // destroy, not close: undici's close() waits for any call that never settled.
    await (c.destroy ?? c.close)();
  }
  console.log(`\n### undici dispatch() with v7 handler API (onResponseEnd)\n${JSON.stringify(await experimentNewApiTrailers())}`);
}

child.disconnect();
child.kill();
