/**
 * @connectrpc/connect-node's Connect and gRPC-Web transports (HTTP/1.1)
 * through the bridge to real gRPC servers: @grpc/grpc-js (proto only) and
 * connect-node's gRPC server (proto and JSON).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService, EchoRequestSchema, ErrorDetailSchema } from "../../gen/bridge/test/v1/test_pb.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startConnectGrpcServer } from "../support/connect-service.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";

const upstreams = [
  { name: "grpc-js upstream", start: startGrpcJsServer, json: false, recordsMetadata: true },
  { name: "connect-node gRPC upstream", start: startConnectGrpcServer, json: true, recordsMetadata: false },
];

const transports = [
  { name: "Connect", create: createConnectTransport, get: true },
  { name: "gRPC-Web", create: createGrpcWebTransport, get: false },
];

for (const upstreamKind of upstreams) for (const transport of transports) {
  const formats = upstreamKind.json ? [true, false] : [true];
  for (const binary of formats) {
    describe(`${transport.name} client (${binary ? "proto" : "JSON"}) -> bridge -> ${upstreamKind.name}`, () => {
      let upstream: RunningServer;
      let bridge: RunningBridge;
      let client: Client<typeof TestService>;
      let getClient: Client<typeof TestService>;

      before(async () => {
        upstream = await upstreamKind.start();
        bridge = await startBridge(upstream.address);
        client = createClient(
          TestService,
          transport.create({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: binary }),
        );
        getClient = createClient(
          TestService,
          createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: binary, useHttpGet: true }),
        );
      });
      after(async () => {
        await bridge.close();
        await upstream.close();
      });

      it("unary call returns the response, headers and trailers", async () => {
        let headers: Headers | undefined;
        let trailers: Headers | undefined;
        const res = await client.unary(
          { text: "hello", payload: new Uint8Array([1, 2, 3]) },
          {
            headers: { "x-echo-user": "ada", "x-echo-token-bin": Buffer.from([0, 255, 7]).toString("base64") },
            onHeader: (h) => (headers = h),
            onTrailer: (t) => (trailers = t),
          },
        );
        assert.equal(res.text, "hello");
        assert.deepEqual([...res.payload], [1, 2, 3]);
        assert.equal(headers?.get("x-echo-user"), "ada");
        assert.equal(trailers?.get("x-trailer-user"), "ada");
        assert.deepEqual([...Buffer.from(trailers?.get("x-trailer-token-bin") ?? "", "base64")], [0, 255, 7]);
      });

      it("unary GET reaches the upstream and returns the response", { skip: transport.get ? false : `${transport.name} has no unary GET` }, async () => {
        const res = await getClient.unary({ text: "via get" });
        assert.equal(res.text, "via get");
      });

      it("large messages (1 MiB each way) pass intact", async () => {
        const payload = Buffer.alloc(1 << 20, 7);
        const res = await client.unary({ text: "big", payload, responseSize: 1 << 20 });
        assert.equal(res.payload.byteLength, 1 << 20);
        assert.ok(res.payload.every((b) => b === 0));
      });

      it("an upstream error arrives with code, message and details", async () => {
        const error = await client
          .unary({ text: "fail", fail: { code: Code.FailedPrecondition, message: "not now: 100% sure", withDetails: true } })
          .then(
            () => assert.fail("expected an error"),
            (e: unknown) => ConnectError.from(e),
          );
        assert.equal(error.code, Code.FailedPrecondition);
        assert.equal(error.rawMessage, "not now: 100% sure");
        const details = error.findDetails(ErrorDetailSchema);
        assert.equal(details.length, 1);
        assert.equal(details[0].reason, "test-reason");
        assert.equal(details[0].retryAfterMs, 1500n);
      });

      it("server streaming delivers every message, then trailers", async () => {
        let trailers: Headers | undefined;
        const got: number[] = [];
        for await (const res of client.serverStream(
          { text: "s", responseCount: 5 },
          { headers: { "x-echo-k": "v" }, onTrailer: (t) => (trailers = t) },
        )) {
          got.push(res.index);
        }
        assert.deepEqual(got, [0, 1, 2, 3, 4]);
        assert.equal(trailers?.get("x-trailer-k"), "v");
      });

      it("server streaming with an error after messages keeps the messages", async () => {
        const got: number[] = [];
        const error = await (async () => {
          for await (const res of client.serverStream({
            text: "sf",
            responseCount: 2,
            fail: { code: Code.ResourceExhausted, message: "quota", withDetails: true },
          })) {
            got.push(res.index);
          }
        })().then(
          () => assert.fail("expected an error"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.deepEqual(got, [0, 1]);
        assert.equal(error.code, Code.ResourceExhausted);
        assert.equal(error.rawMessage, "quota");
        assert.equal(error.findDetails(ErrorDetailSchema)[0]?.reason, "test-reason");
      });

      it("client streaming sends every message and gets one answer", async () => {
        async function* requests() {
          for (const text of ["a", "b", "c"]) yield create(EchoRequestSchema, { text, payload: Buffer.from(text) });
        }
        const res = await client.clientStream(requests());
        assert.equal(res.text, "a,b,c");
        assert.equal(Buffer.from(res.payload).toString(), "abc");
        assert.equal(res.index, 3);
      });

      it("bidi streaming (half duplex over HTTP/1.1) answers each message", async () => {
        async function* requests() {
          for (let i = 0; i < 4; i++) yield create(EchoRequestSchema, { text: `m${i}` });
        }
        const got: string[] = [];
        for await (const res of client.bidiStream(requests())) got.push(`${res.text}@${res.index}`);
        assert.deepEqual(got, ["m0@0", "m1@1", "m2@2", "m3@3"]);
      });

      it("a deadline the upstream cannot meet ends with deadline_exceeded", async () => {
        const error = await client.unary({ text: "slow-deadline", delayMs: 5000 }, { timeoutMs: 150 }).then(
          () => assert.fail("expected an error"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(error.code, Code.DeadlineExceeded);
        await upstream.observations.cancelledCall("slow-deadline");
      });

      it("a client that aborts cancels the upstream call", async () => {
        const controller = new AbortController();
        const call = client.unary({ text: "abort-me", delayMs: 10_000 }, { signal: controller.signal });
        setTimeout(() => controller.abort(), 100);
        await assert.rejects(call);
        await upstream.observations.cancelledCall("abort-me");
      });

      it("a client that aborts a server stream cancels the upstream call", async () => {
        const controller = new AbortController();
        const got: number[] = [];
        await assert.rejects(async () => {
          for await (const res of client.serverStream(
            { text: "abort-stream", responseCount: 1000, delayMs: 20 },
            { signal: controller.signal },
          )) {
            got.push(res.index);
            if (got.length === 2) controller.abort();
          }
        });
        assert.deepEqual(got, [0, 1]);
        await upstream.observations.cancelledCall("abort-stream");
      });

      it("a streaming deadline ends the stream with deadline_exceeded and cancels upstream", async () => {
        const got: number[] = [];
        const error = await (async () => {
          for await (const res of client.serverStream({ text: "stream-deadline", responseCount: 1000, delayMs: 30 }, { timeoutMs: 200 })) {
            got.push(res.index);
          }
        })().then(
          () => assert.fail("expected an error"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(error.code, Code.DeadlineExceeded);
        assert.ok(got.length > 0 && got.length < 1000);
        await upstream.observations.cancelledCall("stream-deadline");
      });

      it("forwards request metadata but not hop-by-hop or protocol headers", { skip: upstreamKind.recordsMetadata ? false : `the ${upstreamKind.name} does not record the metadata it receives` }, async () => {
        await client.unary({ text: "md" }, { headers: { "x-custom": "1", authorization: "Bearer t" } });
        const seen = upstream.observations.metadata.get("md");
        assert.ok(seen, "the grpc-js server records the metadata of every unary call");
        assert.deepEqual(seen["x-custom"], ["1"]);
        assert.deepEqual(seen["authorization"], ["Bearer t"]);
        assert.equal(seen["connect-protocol-version"], undefined);
        assert.equal(seen["connection"], undefined);
      });
    });
  }
}
