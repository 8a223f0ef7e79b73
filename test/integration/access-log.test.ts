/**
 * The access log, read back as JSON lines: a success, an upstream error, the
 * bridge's own refusals and a call the client cancelled, from the plugin
 * (off unless asked, sampling of successes) and from the CLI (on by default).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, grpcBridge, rejectCall, type GrpcBridgeOptions } from "../../src/index.js";
import { runCli } from "../support/cli-process.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { until } from "../support/replicas.js";

type Line = Record<string, unknown>;

/** A host app whose pino logger writes into `lines`; `arrived` fires per line. */
async function loggedApp(options: GrpcBridgeOptions) {
  const lines: Line[] = [];
  const arrived = new EventEmitter();
  const app = Fastify({
    logger: {
      level: "info",
      stream: {
        write: (text: string) => {
          lines.push(JSON.parse(text) as Line);
          arrived.emit("line");
        },
      },
    },
  });
  await app.register(grpcBridge, options);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const rpcLines = () => lines.filter((line) => line.msg === "rpc");
  /** Resolves with the first access log line `match` accepts, once written. */
  const line = async (match: (line: Line) => boolean): Promise<Line> => {
    for (;;) {
      const found = rpcLines().find(match);
      if (found !== undefined) return found;
      await once(arrived, "line");
    }
  };
  return { app, baseUrl, lines, rpcLines, line };
}

describe("access log in the plugin", () => {
  let upstream: RunningServer;
  const apps: FastifyInstance[] = [];
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    for (const app of apps) await app.close();
    await upstream.close();
  });

  it("a success: one line with client, protocol, service, method, code, status, duration, bytes, endpoint, retries", async () => {
    const host = await loggedApp({ upstream: upstream.address, accessLog: {} });
    apps.push(host.app);
    const client = createClient(TestService, createConnectTransport({ baseUrl: host.baseUrl, httpVersion: "1.1" }));
    await client.unary({ text: "logged", responseSize: 100 });
    const line = await host.line((l) => l.method === "Unary");
    assert.equal(line.level, 30, "info");
    assert.equal(typeof line.time, "number");
    assert.equal(line.client, "127.0.0.1");
    assert.equal(line.protocol, "connect");
    assert.equal(line.service, "bridge.test.v1.TestService");
    assert.equal(line.method, "Unary");
    assert.equal(line.code, "ok");
    assert.equal(line.status, 200);
    assert.equal(typeof line.durationMs, "number");
    assert.ok((line.durationMs as number) >= 0);
    // Enveloped message bytes: 5-byte prefix + the protobuf message.
    assert.ok((line.bytesIn as number) > 5, String(line.bytesIn));
    assert.ok((line.bytesOut as number) > 100, String(line.bytesOut));
    assert.equal(line.endpoint, upstream.address);
    assert.equal(line.retries, 0);
    assert.equal(line.traceId, undefined, "no trace id with tracing off");
    assert.equal(line.error, undefined);
    assert.equal(host.rpcLines().length, 1);
  });

  it("an upstream error, a refusal by the dispatch (no such procedure, unrecognised content type), and an adapter's own refusal are logged", async () => {
    const host = await loggedApp({ upstream: upstream.address, accessLog: { successSampleRatio: 0 } });
    apps.push(host.app);
    const client = createClient(TestService, createGrpcWebTransport({ baseUrl: host.baseUrl, httpVersion: "1.1" }));
    const error = await client.unary({ text: "failing", fail: { code: Code.NotFound, message: "no such row" } }).then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.NotFound);
    const failed = await host.line((l) => l.method === "Unary");
    assert.equal(failed.protocol, "grpc-web");
    assert.equal(failed.code, "not_found");
    assert.equal(failed.status, 200, "gRPC-Web carries errors in a 200 answer");
    assert.equal(failed.error, "no such row");
    assert.equal(failed.endpoint, upstream.address);

    const unknown = await fetch(`${host.baseUrl}/healthz`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(unknown.status, 404);
    const refused = await host.line((l) => l.path === "/healthz");
    assert.equal(refused.code, "unimplemented");
    assert.equal(refused.status, 404);
    assert.equal(refused.protocol, "connect");
    assert.equal(refused.endpoint, undefined);
    assert.equal(refused.bytesIn, 0);
    assert.match(String(refused.error), /no procedure at path/);

    const image = await fetch(`${host.baseUrl}/bridge.test.v1.TestService/Unary`, { method: "POST", headers: { "content-type": "image/jpeg" }, body: "x" });
    assert.equal(image.status, 415);
    const unsupported = await host.line((l) => l.status === 415);
    assert.equal(unsupported.protocol, "unknown");
    assert.equal(unsupported.code, "unknown");
    assert.equal(unsupported.method, "Unary");

    // Refused by the adapter itself (a malformed header): the status, no code.
    const badTimeout = await fetch(`${host.baseUrl}/bridge.test.v1.TestService/Unary`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "soon" },
      body: "{}",
    });
    assert.equal(badTimeout.status, 400);
    const adapterRefusal = await host.line((l) => l.status === 400);
    assert.equal(adapterRefusal.code, undefined);
    assert.equal(adapterRefusal.method, "Unary");
  });

  it("a call the client cancels: code canceled, status 0 (no response head was sent)", async () => {
    const host = await loggedApp({ upstream: upstream.address, accessLog: {} });
    apps.push(host.app);
    const client = createClient(TestService, createConnectTransport({ baseUrl: host.baseUrl, httpVersion: "1.1" }));
    const abort = new AbortController();
    const call = client.unary({ text: "to-cancel", delayMs: 30_000 }, { signal: abort.signal }).catch((e: unknown) => ConnectError.from(e));
    await until(() => upstream.observations.metadata.has("to-cancel"), "the upstream to receive the call");
    abort.abort();
    assert.equal(((await call) as ConnectError).code, Code.Canceled);
    const line = await host.line((l) => l.method === "Unary");
    assert.equal(line.code, "canceled");
    assert.equal(line.status, 0);
    assert.equal(line.endpoint, upstream.address);
    assert.equal(typeof line.error, "string");
  });

  it("native gRPC over h2c (createBridge's front door): the client address is read before the stream closes (HTTP/2's socket proxy is empty after), and a server stream's frames are counted", async () => {
    const lines: Line[] = [];
    const app = createBridge({
      upstream: upstream.address,
      accessLog: {},
      fastify: { logger: { level: "info", stream: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } } },
    });
    apps.push(app);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const client = createClient(TestService, createGrpcTransport({ baseUrl }));
    let received = 0;
    for await (const response of client.serverStream({ text: "streamed", responseCount: 3, responseSize: 50 })) received += response.payload.byteLength;
    assert.equal(received, 150);
    await until(() => lines.some((l) => l.msg === "rpc"), "the access log line");
    const line = lines.find((l) => l.msg === "rpc")!;
    assert.equal(line.protocol, "grpc");
    assert.equal(line.method, "ServerStream");
    assert.equal(line.code, "ok");
    assert.equal(line.status, 200);
    assert.equal(line.client, "127.0.0.1");
    // Three frames of at least a 5-byte prefix and the 50-byte payload.
    assert.ok((line.bytesOut as number) >= 3 * 55, String(line.bytesOut));
  });

  it("a host hook's rejectCall is logged by the bridge the request was routed to, under a prefix", async () => {
    const lines: Line[] = [];
    const app = Fastify({ logger: { level: "info", stream: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } } });
    apps.push(app);
    app.addHook("onRequest", async (request, reply) => {
      if (request.headers["x-denied"] !== undefined) rejectCall(request, reply, Code.PermissionDenied, "not you");
    });
    await app.register(grpcBridge, { upstream: upstream.address, accessLog: {}, prefix: "/rpc" });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/rpc`;
    const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    await client.unary({ text: "allowed" });
    const error = await client.unary({ text: "denied" }, { headers: { "x-denied": "1" } }).then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.PermissionDenied);
    await until(() => lines.filter((l) => l.msg === "rpc").length === 2, "two access log lines");
    const [allowed, denied] = lines.filter((l) => l.msg === "rpc");
    assert.equal(allowed.service, "bridge.test.v1.TestService");
    assert.equal(allowed.method, "Unary");
    assert.equal(allowed.code, "ok");
    assert.equal(denied.service, "bridge.test.v1.TestService");
    assert.equal(denied.method, "Unary");
    assert.equal(denied.code, "permission_denied");
    assert.equal(denied.status, 403);
    assert.equal(denied.error, "not you");
  });

  it("sampling: successSampleRatio 0 logs no success but still the errors; no accessLog option, no line at all", async () => {
    const sampled = await loggedApp({ upstream: upstream.address, accessLog: { successSampleRatio: 0 } });
    const silent = await loggedApp({ upstream: upstream.address });
    apps.push(sampled.app, silent.app);
    for (const host of [sampled, silent]) {
      const client = createClient(TestService, createConnectTransport({ baseUrl: host.baseUrl, httpVersion: "1.1" }));
      await client.unary({ text: "fine" });
      await client.unary({ text: "bad", fail: { code: Code.Internal, message: "broken" } }).catch(() => {});
    }
    const error = await sampled.line((l) => l.code === "internal");
    assert.equal(error.error, "broken");
    // The success ended before the error was sent: had it been logged, it would be there.
    assert.deepEqual(sampled.rpcLines().map((l) => l.code), ["internal"]);
    assert.deepEqual(silent.rpcLines(), []);
  });
});

describe("access log in the CLI", () => {
  let upstream: RunningServer;
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream.close();
  });

  it("on by default at info: JSON lines on stdout for a success and a refusal; Fastify's own request lines stay off", async () => {
    const cli = runCli(["--upstream", upstream.address, "--port", "0"]);
    try {
      const baseUrl = await cli.listening();
      const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      await client.unary({ text: "cli-logged" });
      assert.equal((await fetch(`${baseUrl}/healthz`)).status, 404);
      await cli.printed(/"path":"\/healthz"/);
      const lines = cli
        .out()
        .split("\n")
        .filter((text) => text.startsWith("{"))
        .map((text) => JSON.parse(text) as Line);
      const rpc = lines.filter((line) => line.msg === "rpc");
      assert.equal(rpc.length, 2, JSON.stringify(rpc));
      assert.equal(rpc[0].method, "Unary");
      assert.equal(rpc[0].code, "ok");
      assert.equal(rpc[0].status, 200);
      assert.equal(rpc[0].endpoint, upstream.address);
      assert.equal(rpc[1].code, "unimplemented");
      assert.equal(rpc[1].status, 404);
      assert.equal(lines.filter((line) => line.msg === "incoming request" || line.msg === "request completed").length, 0);
    } finally {
      cli.child.kill("SIGTERM");
    }
    assert.equal(await cli.exited, 0);
  });

  it("--access-log false turns it off", async () => {
    const cli = runCli(["--upstream", upstream.address, "--port", "0", "--access-log", "false"]);
    try {
      const baseUrl = await cli.listening();
      const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      await client.unary({ text: "cli-quiet" });
    } finally {
      cli.child.kill("SIGTERM");
    }
    assert.equal(await cli.exited, 0);
    // The logger still logs (the drain's last line comes after the call's would have).
    assert.match(cli.out(), /drain: done, exiting/);
    assert.doesNotMatch(cli.out(), /"msg":"rpc"/);
  });
});
