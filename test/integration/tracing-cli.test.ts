/**
 * Tracing from the CLI: with --otlp-url the bridge process loads the SDK and
 * exports its spans over OTLP/HTTP protobuf to a receiver in the test, which
 * decodes them with the OTLP schema; the grpc-js upstream sees a traceparent
 * in the client's trace, whose parent is the exported span.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { runCli } from "../support/cli-process.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";

const clientTraceId = "0af7651916cd43dd8448eb211c80319c";
const clientSpanId = "b7ad6b7169203331";

describe("CLI tracing: OTLP/HTTP protobuf export", () => {
  let upstream: RunningServer;
  let receiver: OtlpReceiver;
  before(async () => {
    upstream = await startGrpcJsServer();
    receiver = await startOtlpReceiver();
  });
  after(async () => {
    await receiver.close();
    await upstream.close();
  });

  it("exports the call's SERVER span, in the client's trace, flushed when the process stops; the access log line names the trace", async () => {
    const cli = runCli([
      "--upstream",
      upstream.address,
      "--port",
      "0",
      "--otlp-url",
      receiver.url,
      "--trace-service-name",
      "bridge-under-test",
    ]);
    try {
      const baseUrl = await cli.listening();
      const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      await client.unary({ text: "exported" }, { headers: { traceparent: `00-${clientTraceId}-${clientSpanId}-01` } });
      await cli.printed(/"msg":"rpc"/);
    } finally {
      // SIGTERM closes the app, which flushes the batch of spans before exit.
      cli.child.kill("SIGTERM");
    }
    assert.equal(await cli.exited, 0, cli.err());

    const span = await receiver.span("bridge.test.v1.TestService/Unary");
    assert.deepEqual(receiver.requests[0], { path: "/v1/traces", contentType: "application/x-protobuf" });
    assert.equal(span.traceId, clientTraceId);
    assert.equal(span.parentSpanId, clientSpanId);
    assert.equal(span.kind, 2, "SPAN_KIND_SERVER");
    assert.equal(span.scope, "connect-grpc-bridge");
    assert.equal(span.resource["service.name"], "bridge-under-test");
    assert.equal(span.attributes["rpc.system"], "grpc");
    assert.equal(span.attributes["rpc.service"], "bridge.test.v1.TestService");
    assert.equal(span.attributes["rpc.method"], "Unary");
    assert.equal(span.attributes["rpc.grpc.status_code"], 0);
    assert.equal(span.attributes["connect_grpc_bridge.client_protocol"], "connect");

    // The upstream's traceparent: same trace, the exported span as parent.
    assert.deepEqual(upstream.observations.metadata.get("exported")!.traceparent, [`00-${clientTraceId}-${span.spanId}-01`]);

    const line = cli
      .out()
      .split("\n")
      .filter((text) => text.includes('"msg":"rpc"'))
      .map((text) => JSON.parse(text) as Record<string, unknown>)[0];
    assert.equal(line.traceId, clientTraceId);
    assert.equal(line.code, "ok");
  });
});
