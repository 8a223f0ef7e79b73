/**
 * `tracing: {}` with no OpenTelemetry SDK anywhere (no exporter configured,
 * nothing registered globally): spans do not record, and the W3C headers
 * still cross the bridge, as the client's own context (there is no span of
 * the bridge's to put in its place).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";

describe("tracing on without an SDK", () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  before(async () => {
    upstream = await startGrpcJsServer();
    bridge = await startBridge(upstream.address, { tracing: {} });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("the client's traceparent, tracestate and baggage reach the upstream as they were; without one, none is made up", async () => {
    const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await client.unary({ text: "propagated" }, { headers: { traceparent, tracestate: "a=1", baggage: "k=v" } });
    const seen = upstream.observations.metadata.get("propagated")!;
    assert.deepEqual(seen.traceparent, [traceparent]);
    assert.deepEqual(seen.tracestate, ["a=1"]);
    assert.deepEqual(seen.baggage, ["k=v"]);

    await client.unary({ text: "untraced" });
    assert.equal(upstream.observations.metadata.get("untraced")!.traceparent, undefined);
  });

  it("baggage without a traceparent still reaches the upstream (no span context to inject, the parent's baggage is)", async () => {
    const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    await client.unary({ text: "baggage only" }, { headers: { baggage: "k=v,l=w" } });
    const seen = upstream.observations.metadata.get("baggage only")!;
    assert.deepEqual(seen.baggage, ["k=v,l=w"]);
    assert.equal(seen.traceparent, undefined);
  });
});
