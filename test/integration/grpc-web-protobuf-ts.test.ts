/**
 * A second, independent gRPC-Web client: @protobuf-ts/grpcweb-transport (the
 * fetch-based transport many web apps use), in text and binary mode, through
 * the bridge to a @grpc/grpc-js upstream.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { GrpcWebFetchTransport } from "@protobuf-ts/grpcweb-transport";
import { RpcError, type MethodInfo } from "@protobuf-ts/runtime-rpc";
import { TestService, EchoRequestSchema, ErrorDetailSchema, type EchoRequest, type EchoResponse } from "../../gen/bridge/test/v1/test_pb.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";

/**
 * protobuf-ts transports take protobuf-ts method descriptors; these adapt the
 * protobuf-es generated schemas, so both clients share one generated code.
 */
function messageType(schema: DescMessage) {
  return {
    typeName: schema.typeName,
    toBinary: (message: never) => toBinary(schema, message),
    fromBinary: (bytes: Uint8Array) => fromBinary(schema, bytes),
    create: (value?: never) => create(schema, value),
  };
}
function methodInfo(method: DescMethod): MethodInfo<EchoRequest, EchoResponse> {
  const info = {
    name: method.name,
    localName: method.localName,
    I: messageType(method.input),
    O: messageType(method.output),
    serverStreaming: method.methodKind === "server_streaming",
    clientStreaming: false,
    options: {},
    service: { typeName: TestService.typeName, methods: [], options: {} },
  };
  return info as unknown as MethodInfo<EchoRequest, EchoResponse>;
}
const unary = methodInfo(TestService.method.unary);
const serverStream = methodInfo(TestService.method.serverStream);

for (const format of ["text", "binary"] as const) {
  describe(`@protobuf-ts gRPC-Web (${format}) -> bridge -> grpc-js`, () => {
    let upstream: RunningServer;
    let bridge: RunningBridge;
    let transport: GrpcWebFetchTransport;
    // What protobuf-ts's generated clients do before every call.
    const opts = () => transport.mergeOptions({});
    before(async () => {
      upstream = await startGrpcJsServer();
      bridge = await startBridge(upstream.address);
      transport = new GrpcWebFetchTransport({ baseUrl: bridge.baseUrl, format });
    });
    after(async () => {
      await bridge.close();
      await upstream.close();
    });

    it("unary: response, headers, trailers, status", async () => {
      const call = transport.unary(unary, create(EchoRequestSchema, { text: "pt", payload: new Uint8Array([1, 2]) }), {
        ...opts(),
        meta: { "x-echo-who": "ts" },
      });
      const [response, headers, trailers, status] = await Promise.all([call.response, call.headers, call.trailers, call.status]);
      assert.equal(response.text, "pt");
      assert.deepEqual([...response.payload], [1, 2]);
      assert.equal(headers["x-echo-who"], "ts");
      assert.equal(trailers["x-trailer-who"], "ts");
      assert.equal(status.code, "OK");
    });

    it("server streaming: every message, then the status", async () => {
      const call = transport.serverStreaming(serverStream, create(EchoRequestSchema, { text: "ps", responseCount: 4 }), opts());
      const got: number[] = [];
      for await (const message of call.responses) got.push(message.index);
      assert.deepEqual(got, [0, 1, 2, 3]);
      assert.equal((await call.status).code, "OK");
    });

    it("an error carries its code, message and grpc-status-details-bin", async () => {
      const call = transport.unary(
        unary,
        create(EchoRequestSchema, { text: "pe", fail: { code: 9, message: "precondition: ✓", withDetails: true } }),
        opts(),
      );
      const error = await call.response.then(
        () => assert.fail("expected an error"),
        (e: unknown) => e as RpcError,
      );
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, "FAILED_PRECONDITION");
      // grpc-message is percent-encoded on the wire, as the gRPC spec says;
      // this client hands it over without decoding.
      assert.equal(decodeURIComponent(error.message), "precondition: ✓");
      const detailsBin = error.meta["grpc-status-details-bin"];
      assert.equal(typeof detailsBin, "string");
      assert.ok(Buffer.from(String(detailsBin), "base64").includes(Buffer.from(ErrorDetailSchema.typeName)));
    });

    it("an error after streamed messages keeps the messages", async () => {
      const call = transport.serverStreaming(
        serverStream,
        create(EchoRequestSchema, { text: "pse", responseCount: 2, fail: { code: 8, message: "enough" } }),
        opts(),
      );
      const got: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const message of call.responses) got.push(message.index);
        })(),
        (e: unknown) => e instanceof RpcError && e.code === "RESOURCE_EXHAUSTED" && e.message === "enough",
      );
      assert.deepEqual(got, [0, 1]);
    });

    it("a deadline ends the call with DEADLINE_EXCEEDED and cancels upstream", async () => {
      const call = transport.unary(unary, create(EchoRequestSchema, { text: `pt-deadline-${format}`, delayMs: 5000 }), {
        ...opts(),
        timeout: 150,
      });
      await assert.rejects(call.response, (e: unknown) => e instanceof RpcError && e.code === "DEADLINE_EXCEEDED");
      await upstream.observations.cancelledCall(`pt-deadline-${format}`);
    });
  });
}
