/**
 * The drain as an embedder gets it: `app.close()` on createBridge. Readiness
 * (the Lifecycle) fails before the port closes, HTTP/2 sessions get GOAWAY,
 * HTTP/1.1 connections end after their response, open calls end with
 * `unavailable` in their own protocol at drainTimeoutMs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, Lifecycle, type CreateBridgeOptions } from "../../src/index.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { echoRequest, envelope } from "../support/raw-http.js";
import { until } from "../support/replicas.js";

async function listeningBridge(upstream: RunningServer, options: Omit<CreateBridgeOptions, "upstream">) {
  const app = createBridge({ upstream: upstream.address, ...options });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as AddressInfo).port;
  return { app, port, baseUrl: `http://127.0.0.1:${port}` };
}

const transports: [string, (baseUrl: string) => Transport][] = [
  ["Connect (HTTP/1.1)", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { agent: new http.Agent({ keepAlive: true }) } })],
  ["gRPC-Web (HTTP/2)", (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" })],
  ["gRPC", (baseUrl) => createGrpcTransport({ baseUrl })],
];

describe("drain on app.close()", () => {
  it("readiness fails before the port closes; open streams end with unavailable at drainTimeoutMs in every protocol", async () => {
    const upstream = await startGrpcJsServer();
    const lifecycle = new Lifecycle();
    const drainTimeoutMs = 300;
    const { app, baseUrl } = await listeningBridge(upstream, { lifecycle, drainTimeoutMs });
    try {
      let listeningAtDrain: boolean | undefined;
      lifecycle.onDrain(() => (listeningAtDrain = app.server.listening));
      const streams = await Promise.all(
        transports.map(async ([name, transport]) => {
          const iterator = createClient(TestService, transport(baseUrl))
            .serverStream({ text: name, responseCount: 1_000_000, delayMs: 20 })
            [Symbol.asyncIterator]();
          assert.equal((await iterator.next()).done, false, name);
          return {
            name,
            ended: (async () => {
              try {
                while (!(await iterator.next()).done);
                return undefined;
              } catch (error) {
                return error;
              }
            })(),
          };
        }),
      );
      const closing = performance.now();
      await app.close();
      assert.equal(listeningAtDrain, true, "readiness must fail while the port still accepts");
      assert.equal(lifecycle.draining, true);
      assert.ok(performance.now() - closing >= drainTimeoutMs - 20, "closed before the drain timeout");
      for (const stream of streams) {
        const end = await stream.ended;
        assert.ok(end instanceof ConnectError, `${stream.name}: ${String(end)}`);
        assert.equal(end.code, Code.Unavailable, `${stream.name}: ${end.message}`);
        assert.equal(end.rawMessage, "bridge is shutting down", stream.name);
      }
      // The upstream's streams were reset too: nothing keeps running behind a closed bridge.
      await Promise.all(transports.map(([name]) => upstream.observations.cancelledCall(name)));
    } finally {
      await app.close();
      await upstream.close();
    }
  });

  it("calls that finish within drainTimeoutMs are not cut, and close does not wait for the timeout", async () => {
    const upstream = await startGrpcJsServer();
    const { app, baseUrl } = await listeningBridge(upstream, { drainTimeoutMs: 60_000 });
    try {
      const client = createClient(TestService, createGrpcTransport({ baseUrl }));
      const call = client.unary({ text: "slow", delayMs: 200 });
      // The call is in flight at the bridge before the close starts.
      await until(() => upstream.observations.metadata.has("slow"), "the call at the upstream");
      const closing = performance.now();
      await app.close();
      assert.equal((await call).text, "slow");
      assert.ok(performance.now() - closing < 30_000, "close waited for the drain timeout though no call was open");
    } finally {
      await app.close();
      await upstream.close();
    }
  });

  it("HTTP/2: an open session gets GOAWAY at close, its stream in flight still ends with grpc-status 14", async () => {
    const upstream = await startGrpcJsServer();
    const { app, port } = await listeningBridge(upstream, { drainTimeoutMs: 300 });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/bridge.test.v1.TestService/ServerStream", "content-type": "application/grpc", te: "trailers" });
      stream.end(envelope(0, echoRequest({ text: "h2", responseCount: 1_000_000, delayMs: 20 })));
      const trailers = once(stream, "trailers");
      await once(stream, "data");
      const goaway = once(session, "goaway");
      const closed = app.close();
      await goaway;
      const [received] = (await trailers) as [http2.IncomingHttpHeaders];
      assert.equal(received["grpc-status"], "14");
      assert.equal(decodeURIComponent(String(received["grpc-message"])), "bridge is shutting down");
      await closed;
    } finally {
      session.destroy();
      await app.close();
      await upstream.close();
    }
  });

  it("regression: a kept-alive HTTP/1.1 connection whose response was in flight at close kept app.close() waiting forever", async () => {
    const upstream = await startGrpcJsServer();
    const { app, port } = await listeningBridge(upstream, { drainTimeoutMs: 60_000 });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request(
          { port, host: "127.0.0.1", method: "POST", path: "/bridge.test.v1.TestService/Unary", agent, headers: { "content-type": "application/proto" } },
          resolve,
        );
        req.on("error", reject);
        req.end(echoRequest({ text: "h1", delayMs: 300 }));
      });
      await until(() => upstream.observations.metadata.has("h1"), "the call at the upstream");
      const closed = app.close();
      const res = await response;
      // Not started when the close came: the response itself says the connection ends.
      assert.equal(res.headers.connection, "close");
      assert.equal(res.statusCode, 200);
      res.resume();
      await once(res, "end");
      await closed; // would hang before the fix
    } finally {
      agent.destroy();
      await app.close();
      await upstream.close();
    }
  });

  it("regression: an HTTP/1.1 stream whose headers were sent before close: its socket ends after the response", async () => {
    const upstream = await startGrpcJsServer();
    const { app, baseUrl } = await listeningBridge(upstream, { drainTimeoutMs: 60_000 });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { agent } }));
      const iterator = client.serverStream({ text: "h1 stream", responseCount: 10, delayMs: 50 })[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      const closed = app.close();
      let count = 1;
      while (!(await iterator.next()).done) count++;
      assert.equal(count, 10, "the stream was cut");
      await closed; // would hang: the socket was kept alive after the stream
    } finally {
      agent.destroy();
      await app.close();
      await upstream.close();
    }
  });
});
