/**
 * The refusal cases of the Connect conformance suite (connectrpc/conformance
 * v1.0.5, server mode) that the bridge failed (issue 12, cause 2): refusals
 * answered in Connect JSON whatever the caller spoke. connect-go's gRPC and
 * gRPC-Web clients read no body on a non-200 answer and take the code from
 * the HTTP status; a Connect client reads the JSON. So: before the protocol
 * is known, a bare status (415 with Accept-Post, 405 with Allow) and no
 * body, as connect-go's Handler answers; once it is known, the refusal is in
 * that protocol's own form. Each test is named after its suite and case.
 * Real peers: the bridge in front of a grpc-js server; raw HTTP/1.1 and
 * HTTP/2 exchanges for the exact bytes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { echoRequest, envelope, h2Exchange, send, type RawResponse } from "../support/raw-http.js";

const unaryPath = "/bridge.test.v1.TestService/Unary";

/** What a gRPC or gRPC-Web client makes of an answer: the HTTP status first (gRPC's mapping), then grpc-status. */
function grpcClientCode(status: number, headers: Record<string, string | string[] | undefined>): number {
  if (status !== 200) {
    const mapped: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };
    return mapped[status] ?? 2;
  }
  return Number(headers["grpc-status"]);
}

/** A Content-Type that says application/json promises a Connect error a client could read; none of these may carry one. */
function assertNoJsonBody(headers: Record<string, string | string[] | undefined>, what: string): void {
  assert.doesNotMatch(String(headers["content-type"] ?? ""), /json/, `${what}: no JSON error body`);
}

/** A bare refusal: the status, its negotiation header, no content type, no body. */
function assertBare(res: { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }, status: number, header: string, what: string) {
  assert.equal(res.status, status, what);
  assert.ok(String(res.headers[header] ?? "").length > 0, `${what}: ${header}`);
  assert.equal(res.headers["content-type"], undefined, `${what}: no content-type`);
  assert.equal(res.body.byteLength, 0, `${what}: no body`);
}

/** A call of `method` to the unary procedure over h2c. */
function h2Call(port: number, method: string, headers: Record<string, string>, body: Buffer) {
  return h2Exchange(`127.0.0.1:${port}`, { ":method": method, ":path": unaryPath, te: "trailers", ...headers }, body);
}

describe("conformance refusal cases (bridge in front of grpc-js)", () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  before(async () => {
    upstream = await startGrpcJsServer();
    bridge = await startBridge(upstream.address);
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  const post = (headers: Record<string, string>, body: Buffer, method = "POST"): Promise<RawResponse> =>
    send(`${bridge.baseUrl}${unaryPath}`, { method, headers, body });

  it("Unexpected Requests/unexpected-content-type (Connect, HTTP/1.1): bare 415 with Accept-Post, no body", async () => {
    const res = await post({ "content-type": "image/jpeg" }, Buffer.from("12345678", "hex"));
    assertBare(res, 415, "accept-post", "image/jpeg");
    assert.match(res.headers["accept-post"], /application\/proto/);
  });

  it("Unexpected Requests/unexpected-content-type (gRPC-Web, HTTP/1.1): the same bare 415, read by a gRPC-Web client as unknown", async () => {
    const res = await post({ "content-type": "image/jpeg", "x-grpc-web": "1" }, Buffer.from("12345678", "hex"));
    assertBare(res, 415, "accept-post", "image/jpeg from a gRPC-Web client");
    assert.equal(grpcClientCode(res.status, res.headers), 2);
  });

  it("Unexpected Requests/unexpected-content-type (gRPC, HTTP/2): bare 415, no body, read as unknown", async () => {
    const res = await h2Call(bridge.port, "POST", { "content-type": "image/jpeg" }, Buffer.from("12345678", "hex"));
    assertBare(res, 415, "accept-post", "image/jpeg over h2");
    assert.equal(grpcClientCode(res.status, res.headers), 2);
  });

  it("gRPC-Web Unexpected Requests/unexpected-verb: DELETE is 405 with Allow in gRPC-Web's form (status in the headers, no body)", async () => {
    const res = await post({ "content-type": "application/grpc-web", "x-grpc-web": "1" }, envelope(0, echoRequest({ text: "web-delete" })), "DELETE");
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, "POST");
    assertNoJsonBody(res.headers, "DELETE gRPC-Web");
    assert.equal(res.headers["grpc-status"], "2");
    assert.equal(res.body.byteLength, 0);
    assert.equal(grpcClientCode(res.status, res.headers), 2, "unknown, as the case expects");
    assert.equal(upstream.observations.metadata.has("web-delete"), false, "the upstream never saw it");
  });

  it("gRPC-Web Unexpected Requests/unexpected-uri: an unknown service is grpc-status 12, trailers-only", async () => {
    const res = await send(`${bridge.baseUrl}/connectrpc.conformance.v1.UnknownService/UnknownMethod`, {
      headers: { "content-type": "application/grpc-web", "x-grpc-web": "1" },
      body: envelope(0, echoRequest({})),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["grpc-status"], "12");
  });

  it("gRPC Unexpected Requests/unexpected-verb: DELETE over HTTP/2 is 405 with Allow and a trailers-only grpc-status, never reaching the upstream", async () => {
    const res = await h2Call(bridge.port, "DELETE", { "content-type": "application/grpc" }, envelope(0, echoRequest({ text: "grpc-delete" })));
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, "POST");
    assertNoJsonBody(res.headers, "DELETE gRPC");
    assert.equal(res.headers["grpc-status"], "2");
    assert.equal(res.body.byteLength, 0);
    assert.ok([2, 13, 12].includes(grpcClientCode(res.status, res.headers)), "unknown (or internal, unimplemented)");
    assert.equal(upstream.observations.metadata.has("grpc-delete"), false);
  });

  it("gRPC Unexpected Requests/unexpected-codec: application/grpc+foo is a gRPC error (internal), trailers-only, never reaching the upstream", async () => {
    const res = await h2Call(bridge.port, "POST", { "content-type": "application/grpc+foo" }, envelope(0, echoRequest({ text: "grpc-foo" })));
    assert.equal(res.status, 200);
    assertNoJsonBody(res.headers, "grpc+foo");
    assert.equal(res.headers["grpc-status"], "13");
    assert.match(decodeURIComponent(String(res.headers["grpc-message"])), /unsupported codec "foo"/);
    assert.ok([2, 13, 12].includes(grpcClientCode(res.status, res.headers)));
    assert.equal(upstream.observations.metadata.has("grpc-foo"), false, "grpc-js would have decoded it as proto and answered OK");
  });

  it("Connect Unexpected Requests/unexpected-verb: DELETE application/proto stays a Connect 405 error a Connect client reads", async () => {
    const res = await post({ "content-type": "application/proto" }, echoRequest({}), "DELETE");
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, "GET, POST");
    assert.equal(res.headers["content-type"], "application/json");
    assert.equal(JSON.parse(res.body.toString("utf8")).code, "unknown");
  });

  it("native gRPC with a configured codec still passes through (proto, json)", async () => {
    const res = await h2Call(bridge.port, "POST", { "content-type": "application/grpc+proto" }, envelope(0, echoRequest({ text: "grpc-ok" })));
    assert.equal(res.status, 200);
    assert.equal(res.trailers["grpc-status"], "0");
  });
});
