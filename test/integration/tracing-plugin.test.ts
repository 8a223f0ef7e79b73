/**
 * Tracing in the Fastify plugin, with the OpenTelemetry SDK and an
 * in-memory exporter: one SERVER span per call with the RPC attributes,
 * parented on the host's active span (or the client's traceparent when the
 * host has none), the span's own context sent to a real grpc-js upstream,
 * and a `retry` event when the call was sent again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EchoResponseSchema, TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, grpcBridge, type GrpcBridgeOptions } from "../../src/index.js";
import { w3cPropagator } from "../../src/observability/tracing.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();

const clientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const clientSpanId = "00f067aa0ba902b7";
const clientTraceparent = `00-${clientTraceId}-${clientSpanId}-01`;

/**
 * A host app the way an instrumented gateway looks: its onRequest hook
 * starts a request span (child of the client's traceparent, as the http
 * instrumentation does) and runs the rest of the request inside it.
 */
async function hostApp(bridge: GrpcBridgeOptions, hostSpans: Span[] | undefined): Promise<{ app: FastifyInstance; baseUrl: string }> {
  const app = Fastify();
  if (hostSpans !== undefined) {
    const tracer = provider.getTracer("host");
    app.addHook("onRequest", (request, _reply, done) => {
      const parent = propagation.extract(context.active(), request.headers);
      const span = tracer.startSpan(`${request.method} host`, { kind: SpanKind.SERVER }, parent);
      hostSpans.push(span);
      request.raw.once("close", () => span.end());
      context.with(trace.setSpan(parent, span), done);
    });
  }
  await app.register(grpcBridge, bridge);
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, baseUrl: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

function bridgeSpans(): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.instrumentationScope.name === "connect-grpc-bridge");
}

/** The span ends with the call, which may be a moment after the client has its answer. */
async function oneBridgeSpan(): Promise<ReadableSpan> {
  for (let i = 0; i < 100 && bridgeSpans().length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  const spans = bridgeSpans();
  assert.equal(spans.length, 1, `bridge spans: ${spans.map((s) => s.name).join(", ")}`);
  return spans[0];
}

describe("tracing in the plugin (OpenTelemetry SDK, in-memory exporter)", () => {
  let upstream: RunningServer;
  const apps: FastifyInstance[] = [];
  before(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(w3cPropagator);
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    for (const app of apps) await app.close();
    await upstream.close();
    trace.disable();
    context.disable();
    propagation.disable();
    await provider.shutdown();
  });
  const reset = () => exporter.reset();

  it("a Connect unary call: SERVER span named service/method with the RPC attributes, child of the host's request span; the upstream gets the span's context", async () => {
    reset();
    const hostSpans: Span[] = [];
    const { app, baseUrl } = await hostApp({ upstream: upstream.address, tracing: {} }, hostSpans);
    apps.push(app);
    const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    await client.unary({ text: "traced" }, { headers: { traceparent: clientTraceparent, tracestate: "vendor=x", baggage: "tenant=acme" } });

    const span = await oneBridgeSpan();
    assert.equal(span.name, "bridge.test.v1.TestService/Unary");
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.attributes["rpc.system"], "grpc");
    assert.equal(span.attributes["rpc.service"], "bridge.test.v1.TestService");
    assert.equal(span.attributes["rpc.method"], "Unary");
    assert.equal(span.attributes["rpc.grpc.status_code"], 0);
    assert.equal(span.attributes["connect_grpc_bridge.client_protocol"], "connect");
    assert.equal(span.attributes["connect_grpc_bridge.upstream.endpoint"], upstream.address);
    assert.equal(span.attributes["connect_grpc_bridge.attempts"], 1);
    assert.equal(span.attributes["server.address"], "127.0.0.1");
    assert.equal(span.attributes["network.peer.address"], "127.0.0.1");
    assert.equal(typeof span.attributes["network.peer.port"], "number");
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.equal(span.events.length, 0);

    // Parent: the host's request span, itself the client's child.
    assert.equal(hostSpans.length, 1);
    const host = hostSpans[0].spanContext();
    assert.equal(host.traceId, clientTraceId);
    assert.equal(span.spanContext().traceId, clientTraceId);
    assert.equal(span.parentSpanContext?.spanId, host.spanId);

    // The upstream saw the bridge span's context, not the client's headers.
    const seen = upstream.observations.metadata.get("traced")!;
    assert.deepEqual(seen.traceparent, [`00-${clientTraceId}-${span.spanContext().spanId}-01`]);
    assert.deepEqual(seen.tracestate, ["vendor=x"]);
    assert.deepEqual(seen.baggage, ["tenant=acme"]);
  });

  it("without a host span the parent is the client's traceparent; an upstream error is the span's status", async () => {
    reset();
    const { app, baseUrl } = await hostApp({ upstream: upstream.address, tracing: {} }, undefined);
    apps.push(app);
    const client = createClient(TestService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
    const error = await client
      .unary({ text: "traced-error", fail: { code: Code.Internal, message: "boom" } }, { headers: { traceparent: clientTraceparent } })
      .then(
        () => assert.fail("expected an error"),
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(error.code, Code.Internal);
    const span = await oneBridgeSpan();
    assert.equal(span.parentSpanContext?.spanId, clientSpanId);
    assert.equal(span.spanContext().traceId, clientTraceId);
    assert.equal(span.attributes["connect_grpc_bridge.client_protocol"], "grpc-web");
    assert.equal(span.attributes["rpc.grpc.status_code"], Code.Internal);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.status.message, "boom");
    const seen = upstream.observations.metadata.get("traced-error")!;
    assert.deepEqual(seen.traceparent, [`00-${clientTraceId}-${span.spanContext().spanId}-01`]);
  });

  it("a client error code (not_found) leaves the span status unset, as the gRPC conventions say for servers", async () => {
    reset();
    const { app, baseUrl } = await hostApp({ upstream: upstream.address, tracing: {} }, undefined);
    apps.push(app);
    const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    await client.unary({ text: "nf", fail: { code: Code.NotFound, message: "no such thing" } }).catch(() => {});
    const span = await oneBridgeSpan();
    assert.equal(span.attributes["rpc.grpc.status_code"], Code.NotFound);
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    // No traceparent from the client, no host span: a new trace, sent upstream.
    assert.equal(span.parentSpanContext, undefined);
    assert.match(String(upstream.observations.metadata.get("nf")!.traceparent), new RegExp(`^00-${span.spanContext().traceId}-`));
  });

  it("native gRPC over h2c (createBridge): protocol grpc, HTTP/2 attributes, the traceparent replaced upstream", async () => {
    reset();
    const app = createBridge({ upstream: upstream.address, tracing: {} });
    apps.push(app);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const port = (app.server.address() as AddressInfo).port;
    const client = createClient(TestService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    await client.unary({ text: "h2c-traced" }, { headers: { traceparent: clientTraceparent } });
    const span = await oneBridgeSpan();
    assert.equal(span.name, "bridge.test.v1.TestService/Unary");
    assert.equal(span.attributes["connect_grpc_bridge.client_protocol"], "grpc");
    assert.equal(span.attributes["network.protocol.version"], "2");
    assert.equal(span.attributes["server.address"], "127.0.0.1");
    assert.equal(span.attributes["server.port"], port);
    assert.equal(span.attributes["network.peer.address"], "127.0.0.1");
    assert.equal(span.parentSpanContext?.spanId, clientSpanId);
    assert.deepEqual(upstream.observations.metadata.get("h2c-traced")!.traceparent, [`00-${clientTraceId}-${span.spanContext().spanId}-01`]);
  });

  it("a retried call has one retry event naming the endpoint and why (the first stream was refused)", async () => {
    reset();
    let streams = 0;
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.on("error", () => {});
      stream.resume();
      if (++streams === 1) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      const payload = Buffer.from(toBinary(EchoResponseSchema, create(EchoResponseSchema, { text: "second" })));
      const frame = Buffer.alloc(5 + payload.length);
      frame.writeUInt32BE(payload.length, 1);
      payload.copy(frame, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { app, baseUrl } = await hostApp({ clusters: [{ name: "refusing", endpoints: [address] }], tracing: {} }, undefined);
    try {
      const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      assert.equal((await client.unary({ text: "x" })).text, "second");
      const span = await oneBridgeSpan();
      assert.equal(span.attributes["connect_grpc_bridge.attempts"], 2);
      assert.equal(span.events.length, 1);
      const [event] = span.events;
      assert.equal(event.name, "retry");
      assert.equal(event.attributes?.["connect_grpc_bridge.upstream.endpoint"], address);
      assert.equal(event.attributes?.["rpc.grpc.status_code"], Code.Unavailable);
      assert.match(String(event.attributes?.["exception.message"]), /REFUSED_STREAM|refused/i);
    } finally {
      await app.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
