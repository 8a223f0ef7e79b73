/**
 * What is retried, pinned against real node:http2 servers that refuse
 * streams, send GOAWAY or drop connections at exact points: a call is sent
 * again only when it provably never reached the application (REFUSED_STREAM,
 * a GOAWAY whose last-stream-id is below the call's stream, a connection
 * that failed before the request went out), and never once a response began
 * or a streamed request body is no longer held. Also how long connections
 * live: keepalive PINGs, maximum age (ours and the server's GOAWAY), the
 * connect timeout.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { EventEmitter, once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService, EchoResponseSchema } from "../../gen/bridge/test/v1/test_pb.js";
import { createCluster, type Cluster } from "../../src/upstream/cluster.js";
import type { ClusterOptions } from "../../src/upstream/cluster-options.js";
import { RetryingCall } from "../../src/upstream/retrying.js";
import type { CallEnd, CallHead, ResponseSink } from "../../src/call.js";
import { clusterOptions, recordingLog, startClusterBridge, startReplica } from "../support/replicas.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

const cleanups: (() => Promise<void>)[] = [];
/** Runs after each describe: a file-level after() only runs once the event loop is idle. */
async function cleanUp(): Promise<void> {
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) await cleanup();
}

/** Answers a gRPC call with one EchoResponse whose text is `text`. */
function answer(stream: http2.ServerHttp2Stream, text: string): void {
  if (stream.destroyed) return;
  const payload = Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, { text })));
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(frame);
}

/**
 * A node:http2 server whose `onStream` decides each stream's fate; counts
 * streams and connections, and lets a test wait for the nth stream.
 */
async function scriptedServer(onStream: (stream: http2.ServerHttp2Stream, n: number) => void) {
  const server = http2.createServer();
  const stats = { streams: 0, sessions: 0, timeouts: [] as (string | undefined)[] };
  const sessions = new Set<http2.ServerHttp2Session>();
  const arrivals = new EventEmitter();
  /** Resolves once `n` streams have arrived. */
  const streamArrived = async (n: number): Promise<void> => {
    while (stats.streams < n) await once(arrivals, "stream");
  };
  server.on("session", (session) => {
    stats.sessions++;
    // A server session that sent GOAWAY lingers after the client left (Node v20).
    sessions.add(session);
    session.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stats.timeouts.push(headers["grpc-timeout"] as string | undefined);
    stream.on("error", () => {});
    stream.resume();
    onStream(stream, ++stats.streams);
    arrivals.emit("stream");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  );
  return { address, stats, streamArrived, sessions };
}

async function clientFor(options: ClusterOptions) {
  const cluster = createCluster(options, recordingLog().log) as Cluster;
  const bridge = await startClusterBridge(cluster);
  cleanups.push(() => bridge.close());
  return createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
}

function isUnavailable(error: ConnectError): boolean {
  assert.equal(error.code, Code.Unavailable, error.message);
  return true;
}

describe("safe retries", () => {
  after(cleanUp);
  it("REFUSED_STREAM: the call is sent again and succeeds", async () => {
    const server = await scriptedServer((stream, n) => (n === 1 ? stream.close(NGHTTP2_REFUSED_STREAM) : answer(stream, `attempt ${n}`)));
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    assert.equal((await client.unary({ text: "x" })).text, "attempt 2");
    assert.equal(server.stats.streams, 2);
  });

  it("a retry carries what is left of the deadline in grpc-timeout, not the whole of it again", async () => {
    let refused: (() => void) | undefined;
    const server = await scriptedServer((stream, n) => {
      if (n === 1) refused = () => stream.close(NGHTTP2_REFUSED_STREAM);
      else answer(stream, "second");
    });
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    const start = performance.now();
    const call = client.unary({ text: "x" }, { timeoutMs: 30_000 });
    await server.streamArrived(1);
    // Time must pass before the refusal for less of the deadline to be
    // left: this wait is what the test measures, not a synchronisation.
    await sleep(Math.max(0, start + 100 - performance.now()));
    refused!();
    assert.equal((await call).text, "second");
    const [first, second] = server.stats.timeouts.map((t) => Number(/^(\d+)m$/.exec(t ?? "")?.[1]));
    assert.ok(first! <= 30_000 && second! <= first! - 50, `grpc-timeout ${server.stats.timeouts.join(" then ")}`);
  });

  it("a retry right after a refused connection opens a new connection, not a stream on the destroyed one (Node 24: \"The session has been destroyed\")", async () => {
    const dead = net.createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const deadAddress = `127.0.0.1:${(dead.address() as net.AddressInfo).port}`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const { lines, log } = recordingLog();
    const cluster = createCluster(clusterOptions({ endpoints: [deadAddress], retry: { maxAttempts: 2, budgetPercent: 20, minRetriesPerSecond: 10 } }), log) as Cluster;
    cleanups.push(() => cluster.close(true));
    const end = await runCall(cluster, (call) => call.end(Buffer.from([0, 0, 0, 0, 0])));
    assert.equal(end.error?.code, Code.Unavailable);
    assert.match(end.error!.rawMessage, new RegExp(`^upstream "test" unavailable: ${deadAddress}: connect ECONNREFUSED ${deadAddress}$`));
    // Both attempts dialled: the retry did not reuse the connection that had failed.
    assert.equal(lines.filter((l) => /connection to .* failed/.test(l.message)).length, 2, JSON.stringify(lines));
  });

  it("attempts are bounded by maxAttempts: an endpoint that refuses everything sees exactly that many", async () => {
    const server = await scriptedServer((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const client = await clientFor(clusterOptions({ endpoints: [server.address], retry: { maxAttempts: 3, budgetPercent: 20, minRetriesPerSecond: 10 } }));
    await assert.rejects(client.unary({ text: "x" }), isUnavailable);
    assert.equal(server.stats.streams, 3);
  });

  it("the retry budget stops retries once spent (minRetriesPerSecond 0, nothing else in flight)", async () => {
    const server = await scriptedServer((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const client = await clientFor(clusterOptions({ endpoints: [server.address], retry: { maxAttempts: 5, budgetPercent: 0, minRetriesPerSecond: 0 } }));
    await assert.rejects(client.unary({ text: "x" }), isUnavailable);
    assert.equal(server.stats.streams, 1);
  });

  it("graceful GOAWAY below the call's stream: the in-flight call finishes, the later one is retried on a new connection", async () => {
    let first: http2.ServerHttp2Stream | undefined;
    const server = await scriptedServer((stream, n) => {
      if (n === 1) first = stream;
      else if (n === 2) {
        stream.session!.goaway(NGHTTP2_NO_ERROR, 1); // stream 3 was never processed
        answer(first!, "in flight");
      } else answer(stream, "retried");
    });
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    const a = client.unary({ text: "a" });
    await server.streamArrived(1);
    const b = client.unary({ text: "b" });
    assert.equal((await a).text, "in flight");
    assert.equal((await b).text, "retried");
    assert.equal(server.stats.streams, 3);
    assert.equal(server.stats.sessions, 2);
  });

  it("GOAWAY with an error: the processed call fails with unavailable, the unprocessed one is retried", async () => {
    const server = await scriptedServer((stream, n) => {
      if (n === 2) stream.session!.goaway(NGHTTP2_ENHANCE_YOUR_CALM, 1);
      else if (n > 2) answer(stream, "retried");
    });
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    const a = client.unary({ text: "a" });
    await server.streamArrived(1);
    const b = client.unary({ text: "b" });
    await assert.rejects(a, isUnavailable);
    assert.equal((await b).text, "retried");
    assert.equal(server.stats.streams, 3);
  });

  it("a connection lost after the request was sent is not retried (the application may have run it)", async () => {
    const server = await scriptedServer((stream) => stream.on("end", () => stream.session!.destroy()));
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    await assert.rejects(client.unary({ text: "x" }), isUnavailable);
    assert.equal(server.stats.streams, 1);
  });

  it("a reset after response headers is not retried, even REFUSED_STREAM", async () => {
    const server = await scriptedServer((stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      setImmediate(() => stream.close(NGHTTP2_REFUSED_STREAM));
    });
    const client = await clientFor(clusterOptions({ endpoints: [server.address] }));
    await assert.rejects(client.unary({ text: "x" }), (error: ConnectError) => error instanceof ConnectError);
    assert.equal(server.stats.streams, 1);
  });
});

/** Drives a RetryingCall directly, to control exactly when request bytes are written. */
function runCall(cluster: Cluster, send: (call: RetryingCall) => void): Promise<CallEnd> {
  return new Promise((resolve) => {
    const sink: ResponseSink = { onHeaders: () => {}, onData: () => true, onEnd: resolve };
    const head: CallHead = { protocol: "grpc", unary: false, get: false, path: "/bridge.test.v1.TestService/Unary", codec: "proto", metadata: {} };
    send(new RetryingCall(cluster, head, sink, { maxResponseMessageBytes: 1 << 20 }));
  });
}

describe("safe retries: what the request body allows", () => {
  after(cleanUp);
  it("a request frame handed over whole (unary) is replayed after a refused connection; a streamed one is not", async () => {
    const dead = net.createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const deadAddress = `127.0.0.1:${(dead.address() as net.AddressInfo).port}`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const replica = await startReplica("body");
    cleanups.push(() => replica.close());
    const frame = Buffer.from([0, 0, 0, 0, 0]);
    const options = clusterOptions({ endpoints: [deadAddress, replica.address] });

    const whole = createCluster(options, recordingLog().log) as Cluster;
    cleanups.push(() => whole.close(true));
    const replayed = await runCall(whole, (call) => call.end(frame));
    assert.equal(replayed.error, undefined, replayed.error?.message);
    assert.equal(replica.calls, 1);

    const streamed = createCluster(options, recordingLog().log) as Cluster;
    cleanups.push(() => streamed.close(true));
    const lost = await runCall(streamed, (call) => {
      call.write(frame); // the bytes are gone from our hands once written
      call.end();
    });
    assert.equal(lost.error?.code, Code.Unavailable);
    assert.match(lost.error!.message, /ECONNREFUSED/);
    assert.equal(replica.calls, 1);
  });
});

describe("connection lifetime", () => {
  after(cleanUp);

  async function proxiedClient(overrides: Partial<ClusterOptions>, serverOptions = {}) {
    const replica = await startReplica("life", { serverOptions });
    cleanups.push(() => replica.close());
    const proxy = await startTcpProxy(replica.port);
    cleanups.push(() => proxy.close());
    const { log, lines } = recordingLog();
    const cluster = createCluster(clusterOptions({ endpoints: [proxy.address], ...overrides }), log) as Cluster;
    const bridge = await startClusterBridge(cluster);
    cleanups.push(() => bridge.close());
    const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    return { client, proxy, lines, replica };
  }

  it("keepalive: a call in flight on a connection that went silent fails with unavailable, and the next call reconnects", async () => {
    const { client, proxy, lines } = await proxiedClient({ keepaliveIntervalMs: 30, keepaliveTimeoutMs: 100 });
    assert.equal((await client.unary({ text: "warm" })).text, "life");
    proxy.frozen = true;
    await assert.rejects(client.unary({ text: "stuck" }), (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable);
      assert.match(error.rawMessage, /keepalive PING unanswered for 100 ms/);
      return true;
    });
    await once(proxy.sockets[0]!, "close");
    assert.ok(lines.some((l) => /connection to .* failed/.test(l.message)), JSON.stringify(lines));
    proxy.frozen = false;
    assert.equal((await client.unary({ text: "after" })).text, "life");
    assert.equal(proxy.sockets.length, 2);
  });

  it("maxConnectionAgeMs: an old connection finishes its call and the next call opens a new one", async () => {
    // The first call is answered only once its connection reached its age:
    // the bridge's GOAWAY (graceful close) is what the server waits for.
    const server = await scriptedServer((stream, n) => {
      if (n === 1) stream.session!.once("goaway", () => answer(stream, "old"));
      else answer(stream, "new");
    });
    const client = await clientFor(clusterOptions({ endpoints: [server.address], maxConnectionAgeMs: 50 }));
    // Without the age limit nothing answers: the deadline turns that into a failure, not a hang.
    assert.equal((await client.unary({ text: "slow" }, { timeoutMs: 5000 })).text, "old");
    const [first] = server.sessions;
    if (!first!.destroyed) await once(first!, "close");
    assert.equal((await client.unary({ text: "next" })).text, "new");
    assert.equal(server.stats.sessions, 2);
  });

  it("a grpc-js server's max connection age (GOAWAY): the call in flight finishes, later calls go to a new connection", async () => {
    const { client, proxy } = await proxiedClient(
      {},
      { "grpc.max_connection_age_ms": 50, "grpc.max_connection_age_grace_ms": 10_000 },
    );
    assert.equal((await client.unary({ text: "slow", delayMs: 300 })).text, "life");
    for (let i = 0; i < 3; i++) assert.equal((await client.unary({ text: String(i) })).text, "life");
    assert.ok(proxy.sockets.length >= 2, `connections: ${proxy.sockets.length}`);
  });

  it("connect timeout: a port that accepts but never speaks HTTP/2 fails the call with unavailable and backs off", async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const accepted: net.Socket[] = [];
    silent.on("connection", (socket) => accepted.push(socket));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const socket of accepted) socket.destroy();
          silent.close(() => resolve());
        }),
    );
    const live = await startReplica("after-timeout");
    cleanups.push(() => live.close());
    const silentAddress = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const { log } = recordingLog();
    const cluster = createCluster(clusterOptions({ endpoints: [silentAddress, live.address], connectTimeoutMs: 100 }), log) as Cluster;
    const bridge = await startClusterBridge(cluster);
    cleanups.push(() => bridge.close());
    const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    // The request went out on the TCP connection: not provably unprocessed, so not retried.
    await assert.rejects(client.unary({ text: "first" }), (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable);
      assert.match(error.rawMessage, /connect timeout after 100 ms/);
      return true;
    });
    assert.deepEqual(cluster.usableAddresses(), [live.address]);
    assert.equal((await client.unary({ text: "second" })).text, "after-timeout");
  });
});
