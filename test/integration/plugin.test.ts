/**
 * The bridge as a plugin inside a host Fastify app: host hooks run for
 * bridged calls, and the plugin stays encapsulated.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { buildGateway } from "../../examples/auth-gateway.js";
import { grpcBridge } from "../../src/index.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { decodeEchoResponse, echoRequest } from "../support/raw-http.js";

describe("grpcBridge plugin in a host app (examples/auth-gateway)", () => {
  let upstream: RunningServer;
  const gateway = () => buildGateway(upstream.address, "s3cret");
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream.close();
  });

  it("the host's onRequest hook rejects calls without the token, as a Connect error", async () => {
    const app = gateway();
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const port = (app.server.address() as AddressInfo).port;
      const client = createClient(TestService, createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }));
      const error = await client.unary({ text: "no-token" }).then(
        () => assert.fail("expected an error"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error.code, Code.Unauthenticated);
      assert.equal(upstream.observations.metadata.has("no-token"), false, "the upstream never saw the call");

      let headers: Headers | undefined;
      const res = await client.unary(
        { text: "with-token" },
        { headers: { authorization: "Bearer s3cret" }, onHeader: (h) => (headers = h) },
      );
      assert.equal(res.text, "with-token");
      assert.ok(headers?.get("x-request-id"), "the preHandler hook's reply header reaches the client");
    } finally {
      await app.close();
    }
  });

  it("rejectCall answers gRPC-Web and native gRPC (HTTP/2) callers in their own protocol", async () => {
    const app = gateway();
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      for (const transport of [
        createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
        createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
        createGrpcTransport({ baseUrl }),
        createConnectTransport({ baseUrl, httpVersion: "2" }),
      ]) {
        const client = createClient(TestService, transport);
        const error = await client.unary({ text: "no-token" }).then(
          () => assert.fail("expected an error"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(error.code, Code.Unauthenticated);
        assert.equal(error.rawMessage, "missing or wrong bearer token");
        let headers: Headers | undefined;
        const res = await client.unary(
          { text: "token" },
          { headers: { authorization: "Bearer s3cret" }, onHeader: (h) => (headers = h) },
        );
        assert.equal(res.text, "token");
        assert.ok(headers?.get("x-request-id"), "the host's reply headers reach every protocol's response");
      }
    } finally {
      await app.close();
    }
  });

  it("works with fastify.inject, and host routes keep their own parsers", async () => {
    const app = gateway();
    const bridged = await app.inject({
      method: "POST",
      url: "/bridge.test.v1.TestService/Unary",
      headers: { "content-type": "application/proto", authorization: "Bearer s3cret" },
      payload: echoRequest({ text: "inject" }),
    });
    assert.equal(bridged.statusCode, 200);
    assert.equal(decodeEchoResponse(bridged.rawPayload).text, "inject");
    const health = await app.inject({ method: "GET", url: "/healthz" });
    assert.deepEqual(health.json(), { ok: true });
    await app.close();
  });

  it("serves under a prefix and leaves the host's JSON parser alone", async () => {
    const app = Fastify();
    app.post("/echo-json", async (request) => request.body);
    await app.register(grpcBridge, { upstream: upstream.address, prefix: "/rpc" });
    const bridged = await app.inject({
      method: "POST",
      url: "/rpc/bridge.test.v1.TestService/Unary",
      headers: { "content-type": "application/proto" },
      payload: echoRequest({ text: "prefixed" }),
    });
    assert.equal(decodeEchoResponse(bridged.rawPayload).text, "prefixed");
    const json = await app.inject({ method: "POST", url: "/echo-json", payload: { a: 1 } });
    assert.deepEqual(json.json(), { a: 1 });
    await app.close();
  });

  it("rejects missing options with a message naming the option", async () => {
    const app = Fastify();
    app.register(grpcBridge, {} as never);
    await assert.rejects(async () => {
      await app.ready();
    }, /option "upstream" is required/);
  });
});
