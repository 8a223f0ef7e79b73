// Upstream h2c client probe for the Connect->gRPC bridge.
//
//   node bench/upstream-client-probe/probe.mjs
//
// Env knobs (all optional): DURATION_MS (5000), WARMUP_MS (1000), LAT_MS (3000),
// CONC (64), ROTATE (n: start the client order at index n, so repeated runs
// don't always favour the same position), SKIP_BENCH, SKIP_EXPERIMENTS.
//
// Part 1 measures unary gRPC-over-h2c throughput (CONC in flight) and latency
// (1 in flight). Part 2 runs small behavioural experiments: RST_STREAM
// visibility, trailers/body integrity, full duplex, concurrent streaming calls.
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
// Sent on every call; :method/:path are added by each client.
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
// Each factory returns { call(path, body, opts) -> {status, body, trailers}, close, destroy? }.
// opts.slow:   read the response slowly (forces backpressure/pausing).
// opts.duplex: write one message, wait for the first echoed chunk (max 2 s),
//              wait opts.holdMs more, then write a second message and end.

// Resolves when the first response chunk arrives or after 2 s, whichever first.
const raceFirstData = (firstData) =>
  Promise.race([firstData.then(() => 'echo-before-end'), sleep(2000).then(() => 'timeout')]);

// Shared by node:http2 and Http2SessionManager (both yield a ClientHttp2Stream).
// We settle on 'close' because it is the one event that always comes last,
// after 'end' or 'error' -- and after a bare RST_STREAM(CANCEL) it is the only one.
function consumeH2Stream(stream, body, { slow = false, duplex = false, holdMs = 0, onData } = {}) {
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
    stream.write(body);
    raceFirstData(new Promise((r) => stream.once('data', r))).then(async (r) => {
      duplexResult = r;
      await sleep(holdMs);
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
      // connect-node's own transport reports reads so the manager can track idleness.
      return consumeH2Stream(stream, body, { ...opts, onData: (s) => manager.notifyResponseByteRead(s) });
    },
    close: () => manager.abort(),
  };
}

// Request body for undici in duplex mode: an async iterable that yields one
// message, waits for gotData() (first response chunk) or 2 s, holds, yields another.
function duplexBody(body, holdMs = 0) {
  let gotData;
  const firstData = new Promise((r) => { gotData = r; });
  const state = { result: undefined, gotData };
  state.iterable = (async function* () {
    yield body;
    state.result = await raceFirstData(firstData);
    await sleep(holdMs);
    yield body;
  })();
  return state;
}

// undici's h2 scheduler (client-h2.js busy()) will not start a request while
// any other is running if the request is non-idempotent (POST by default) or
// has a stream/iterable body. `idempotent: true` lifts the first restriction
// only; hence the variants below.
function undiciRequestClient(extraOpts) {
  const client = new H2CClient(origin);
  return {
    call: async (path, body, { slow = false, duplex = false, holdMs = 0, undiciOpts } = {}) => {
      const d = duplex ? duplexBody(body, holdMs) : null;
      const res = await client.request({
        path, method: 'POST', headers: GRPC_HEADERS, body: d ? d.iterable : body, ...extraOpts, ...undiciOpts,
      });
      const chunks = [];
      for await (const c of res.body) {
        chunks.push(c);
        d?.gotData();
        if (slow) await sleep(1);
      }
      // res.trailers is only filled once the body has been consumed.
      return { status: res.statusCode, body: Buffer.concat(chunks), trailers: res.trailers, duplexResult: d?.result };
    },
    close: () => client.close(),
    destroy: () => client.destroy(),
    running: () => client.stats.running, // requests undici still considers in flight
  };
}

// dispatch() with the *legacy* handler shape (onConnect/onHeaders/onData/
// onComplete/onError), on purpose: over h2, onComplete receives Node's
// trailers object untouched, whereas the v7 onResponseEnd(controller, trailers)
// shape runs it through parseHeaders(), which expects a flat [k, v, ...] array
// and so yields {} (see experimentNewApiTrailers).
function undiciDispatchClient(extraOpts) {
  const client = new H2CClient(origin);
  return {
    call: (path, body, { slow = false, duplex = false, holdMs = 0, undiciOpts } = {}) => new Promise((resolve, reject) => {
      const d = duplex ? duplexBody(body, holdMs) : null;
      const chunks = [];
      let status, resume;
      const opts = { path, method: 'POST', headers: GRPC_HEADERS, body: d ? d.iterable : body, ...extraOpts, ...undiciOpts };
      client.dispatch(opts, {
        onConnect() {},
        onHeaders(statusCode, _headers, res) { status = statusCode; resume = res; return true; },
        onData(chunk) {
          chunks.push(chunk);
          d?.gotData();
          if (slow) { setTimeout(resume, 1); return false; } // pause; resume in 1 ms
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
    running: () => client.stats.running, // requests undici still considers in flight
  };
}

// experiments: false = benchmark only (behaviour is the same as its sibling).
const CLIENTS = [
  { name: 'node:http2', make: nodeHttp2Client },
  { name: 'undici H2CClient request() idempotent:true', make: () => undiciRequestClient({ idempotent: true }) },
  { name: 'undici H2CClient dispatch() idempotent:true', make: () => undiciDispatchClient({ idempotent: true }) },
  { name: 'undici H2CClient dispatch() default opts (POST)', make: () => undiciDispatchClient({}), experiments: false },
  { name: 'connect-node Http2SessionManager', make: connectManagerClient },
];
const rot = Number(process.env.ROTATE ?? 0) % CLIENTS.length;
const ORDER = [...CLIENTS.slice(rot), ...CLIENTS.slice(0, rot)];

// ------------------------------------------------------------- benchmark ---
// A call "completes" if it returns the full echoed envelope. Completions whose
// trailers lack grpc-status "0" are counted separately, so a client that loses
// trailers still gets a throughput number but is flagged.
async function bench(call, conc, durationMs) {
  let stop = false, measuring = false, done = 0, noStatus = 0, errors = 0, firstErr;
  const lat = [];
  const worker = async () => {
    while (!stop) {
      const t0 = performance.now();
      let res;
      try { res = await call(ECHO_PATH, MSG); } catch (e) { firstErr ??= e; }
      if (!measuring) continue;
      if (res?.body.length !== MSG.length) { errors++; continue; }
      done++;
      if (res.trailers?.['grpc-status'] !== '0') noStatus++;
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
  return { rps: done / secs, done, noStatus, errors, p50: pct(0.5), p99: pct(0.99), firstErr: firstErr?.message };
}

// ----------------------------------------------------------- experiments ---
// Describe how a call ended; a call that never settles is itself a finding.
async function outcome(promise) {
  try {
    const r = await Promise.race([promise, sleep(5000).then(() => { throw new Error('no settle within 5 s'); })]);
    return { resolved: true, status: r.status, bodyLen: r.body.length, trailers: r.trailers, rstCode: r.rstCode, duplex: r.duplexResult };
  } catch (e) {
    return { rejected: true, name: e.name, code: e.code, message: e.message, rstCode: e.rstCode };
  }
}

const summarize = (o) => (o.rejected ? `error: ${o.message}`
  : `${o.duplex ? `${o.duplex}, ` : ''}bodyLen ${o.bodyLen}, grpc-status ${o.trailers?.['grpc-status'] ?? 'missing'}`);

// Repeat a call and tally outcomes; truncation/hangs are intermittent.
async function tally(times, fn) {
  const counts = {};
  for (let i = 0; i < times; i++) {
    const o = await outcome(fn());
    counts[summarize(o)] = (counts[summarize(o)] ?? 0) + 1;
    if (/no settle/.test(o.message)) break; // client is wedged, stop
  }
  return counts;
}

async function experiments(make) {
  const big = 1 << 20; // 1 MiB message -> 1048581-byte envelope
  const r = {};
  const c = make();
  r['(i) reset after headers: RST_STREAM(REFUSED_STREAM=7)'] = await outcome(c.call('/reset', MSG));
  r['(i) naive reset: HEADERS, DATA(END_STREAM), RST_STREAM(7)'] = await outcome(c.call('/reset-naive', MSG));
  r['(i) reset before headers: RST_STREAM(CANCEL=8)'] = await outcome(c.call('/reset-before-headers', MSG));
  r['(i) echo after resets (same connection still usable?)'] = summarize(await outcome(c.call(ECHO_PATH, MSG)));
  r['(ii) 1 MiB response + trailers, fast reader x10'] = await tally(10, () => c.call(`/big?n=${big}`, MSG));
  r['(ii) 1 MiB response + trailers, slow reader x10 (stop at first hang)'] =
    await tally(10, () => c.call(`/big?n=${big}`, MSG, { slow: true }));
  r['(ii) echo after slow-reader runs (same connection still usable?)'] = summarize(await outcome(c.call(ECHO_PATH, MSG)));
  if (c.running) {
    // Nothing is in flight now; a non-zero count means completed calls leaked.
    r['(ii) undici stats.running with nothing in flight'] = c.running();
    // A POST without idempotent:true waits for running === 0 before starting.
    r['(ii) default-opts POST (idempotent unset) after slow-reader runs'] =
      summarize(await outcome(c.call(ECHO_PATH, MSG, { undiciOpts: { idempotent: undefined } })));
  }
  // destroy, not close: undici's close() waits for calls that never settled.
  await (c.destroy ?? c.close)();

  // Fresh client, so an earlier wedge can't masquerade as "no duplex".
  const d = make();
  r['(iii) duplex x5: echo received before request end?'] = await tally(5, () => d.call('/duplex', MSG, { duplex: true }));
  // Three streaming-body calls each held open ~1 s: ~1 s total means they
  // ran concurrently on the connection, ~3 s means they were serialized.
  const t0 = performance.now();
  const three = await Promise.all([1, 2, 3].map(() => outcome(d.call('/duplex', MSG, { duplex: true, holdMs: 1000 }))));
  r['(iii) 3 concurrent duplex calls held open 1 s'] =
    `${three.map(summarize).join(' | ')}; wall ${((performance.now() - t0) / 1000).toFixed(2)} s`;
  await (d.destroy ?? d.close)();
  return r;
}

// The v7 handler API: what do onResponseEnd's trailers and the (undocumented)
// controller.rawTrailers contain for an h2 response?
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
if (!process.env.SKIP_BENCH) {
  const results = [];
  for (const { name, make } of ORDER) {
    const c1 = make();
    const thr = await bench(c1.call, CONC, DURATION_MS);
    await c1.close();
    const c2 = make();
    const lat = await bench(c2.call, 1, LAT_MS);
    await c2.close();
    results.push({ name, thr, lat });
    const err = thr.firstErr ?? lat.firstErr;
    if (err) console.error(`${name}: first error: ${err}`);
  }
  console.log(`\n| client | req/s @c=${CONC} | p50 ms @c=1 | p99 ms @c=1 | calls w/o grpc-status 0 | errors |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const { name, thr, lat } of results) {
    console.log(`| ${name} | ${thr.rps.toFixed(0)} | ${lat.p50.toFixed(3)} | ${lat.p99.toFixed(3)} | ` +
      `${thr.noStatus + lat.noStatus}/${thr.done + lat.done} | ${thr.errors + lat.errors} |`);
  }
}

if (!process.env.SKIP_EXPERIMENTS) {
  console.log('\n## experiments');
  for (const { name, make, experiments: run = true } of CLIENTS) {
    if (run) console.log(`\n### ${name}\n${JSON.stringify(await experiments(make), null, 1)}`);
  }
  console.log(`\n### undici dispatch() with the v7 handler API (onResponseEnd)\n${JSON.stringify(await experimentNewApiTrailers())}`);
}

child.disconnect();
child.kill();
