/**
 * Exact wire details through the bridge to a @grpc/grpc-js upstream, seen with
 * raw HTTP: status codes, content types, `trailer-` headers, error JSON,
 * GET, end-stream messages, and the bridge's own errors.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { request } from "node:http";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import type { CreateBridgeOptions } from "../../src/index.js";
import { startFaultServer } from "../support/fault-server.js";
import { decodeEchoResponse, echoRequest, endStream, envelope, send, splitFrames } from "../support/raw-http.js";

const svc = "/bridge.test.v1.TestService";
const unary = { "content-type": "application/proto" };
const stream = { "content-type": "application/connect+proto" };

const json = (res: { body: Buffer }) => JSON.parse(res.body.toString("utf8"));

/**
 * A @grpc/grpc-js upstream behind a bridge with `options`, started before the
 * current suite and closed after it; `post` sends a raw request to the bridge.
 */
function bridgedGrpcJs(options: Omit<CreateBridgeOptions, "upstream">) {
  const env = {
    upstream: undefined as unknown as RunningServer,
    bridge: undefined as unknown as RunningBridge,
    post: (path: string, headers: Record<string, string>, body: Uint8Array) =>
      send(`${env.bridge.baseUrl}${path}`, { headers, body }),
  };
  before(async () => {
    env.upstream = await startGrpcJsServer();
    env.bridge = await startBridge(env.upstream.address, options);
  });
  after(async () => {
    await env.bridge.close();
    await env.upstream.close();
  });
  return env;
}

describe("wire format through the bridge to grpc-js", () => {
  const env = bridgedGrpcJs({ maxRequestBytes: 64 * 1024, maxResponseBytes: 256 * 1024 });
  const post = env.post;

  it("unary success: 200, application/proto, bare message, trailers as trailer- headers", async () => {
    const res = await post(`${svc}/Unary`, { ...unary, "x-echo-k": "v" }, echoRequest({ text: "w" }));
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/proto");
    assert.equal(res.headers["x-echo-k"], "v");
    assert.equal(res.headers["trailer-x-trailer-k"], "v");
    assert.equal(res.headers["content-length"], String(res.body.byteLength));
    assert.equal(decodeEchoResponse(res.body).text, "w");
    assert.equal(res.headers["grpc-status"], undefined);
  });

  it("unary GET with a percent-encoded binary message (no base64)", async () => {
    const message = echoRequest({ text: "raw\u00ff", payload: new Uint8Array([0, 0xff, 0x25, 0x2b]) });
    const encoded = [...message].map((b) => "%" + b.toString(16).padStart(2, "0")).join("");
    const res = await send(`${env.bridge.baseUrl}${svc}/Unary?encoding=proto&message=${encoded}`, { method: "GET" });
    assert.equal(res.status, 200);
    const decoded = decodeEchoResponse(res.body);
    assert.equal(decoded.text, "raw\u00ff");
    assert.deepEqual([...decoded.payload], [0, 0xff, 0x25, 0x2b]);
  });

  it("unary GET without encoding is 415", async () => {
    const res = await send(`${env.bridge.baseUrl}${svc}/Unary?message=x`, { method: "GET" });
    assert.equal(res.status, 415);
    assert.equal(res.headers["content-type"], "application/json");
  });

  it("unary GET with invalid base64 is invalid_argument", async () => {
    const res = await send(`${env.bridge.baseUrl}${svc}/Unary?encoding=proto&base64=1&message=a*b`, { method: "GET" });
    assert.equal(res.status, 400);
    assert.equal(json(res).code, "invalid_argument");
  });

  it("gzip request bodies pass through to the upstream compressed", async () => {
    const res = await post(`${svc}/Unary`, { ...unary, "content-encoding": "gzip" }, gzipSync(echoRequest({ text: "zipped" })));
    assert.equal(res.status, 200);
    assert.equal(decodeEchoResponse(res.body).text, "zipped");
  });

  it("an unknown compression is unimplemented and names the supported ones", async () => {
    const res = await post(`${svc}/Unary`, { ...unary, "content-encoding": "snappy" }, echoRequest({}));
    assert.equal(res.status, 501);
    assert.equal(json(res).code, "unimplemented");
    assert.match(json(res).message, /gzip/);
  });

  it("a path that is not /package.Service/Method is 404 unimplemented", async () => {
    for (const path of ["/", "/only-one-segment", "/a.B/C/D", "/a.B/"]) {
      const res = await post(path, unary, echoRequest({}));
      assert.equal(res.status, 404, path);
      assert.equal(json(res).code, "unimplemented", path);
    }
  });

  it("methods other than GET and POST are 405 with Allow", async () => {
    const res = await send(`${env.bridge.baseUrl}${svc}/Unary`, { method: "PUT", headers: unary, body: echoRequest({}) });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, "GET, POST");
    assert.equal(res.headers["content-type"], "application/json");
  });

  it("a content type of no protocol is a bare 415 with Accept-Post and no body", async () => {
    for (const contentType of ["text/plain", "application/xml; charset=latin1"]) {
      const res = await post(`${svc}/Unary`, { "content-type": contentType }, Buffer.from("x"));
      assert.equal(res.status, 415, contentType);
      assert.match(res.headers["accept-post"] ?? "", /application\/proto, /, contentType);
      assert.equal(res.body.byteLength, 0, contentType);
    }
  });

  it("gRPC-Web with a codec the bridge does not take is a gRPC-Web internal error, trailers-only", async () => {
    const res = await post(`${svc}/Unary`, { "content-type": "application/grpc-web+cbor" }, Buffer.from("x"));
    assert.equal(res.status, 200);
    assert.equal(res.headers["grpc-status"], "13");
    assert.match(decodeURIComponent(res.headers["grpc-message"] ?? ""), /unsupported codec "cbor"/);
    assert.equal(res.body.byteLength, 0);
  });

  it("an unknown Connect-Protocol-Version is invalid_argument", async () => {
    const res = await post(`${svc}/Unary`, { ...unary, "connect-protocol-version": "2" }, echoRequest({}));
    assert.equal(res.status, 400);
    assert.equal(json(res).code, "invalid_argument");
  });

  it("a malformed Connect-Timeout-Ms is invalid_argument", async () => {
    for (const value of ["-1", "abc", "12345678901"]) {
      const res = await post(`${svc}/Unary`, { ...unary, "connect-timeout-ms": value }, echoRequest({}));
      assert.equal(res.status, 400, value);
      assert.equal(json(res).code, "invalid_argument", value);
    }
  });

  it("a body over maxRequestBytes is resource_exhausted", async () => {
    const res = await post(`${svc}/Unary`, unary, Buffer.alloc(64 * 1024 + 1));
    assert.equal(res.status, 429);
    assert.equal(json(res).code, "resource_exhausted");
  });

  it("a malformed proto body gets the upstream's error, well-formed", async () => {
    const res = await post(`${svc}/Unary`, unary, Buffer.from([0xff, 0xff, 0xff]));
    assert.equal(res.headers["content-type"], "application/json");
    assert.notEqual(res.status, 200);
    assert.equal(typeof json(res).code, "string");
  });

  it("a unary call answered with zero messages is unimplemented, not an empty success", async () => {
    const res = await post(`${svc}/ServerStream`, unary, echoRequest({ text: "z", responseCount: 0 }));
    assert.equal(res.status, 501);
    assert.match(json(res).message, /no response message/);
  });

  it("a unary call answered with two messages is unimplemented, not truncated", async () => {
    const res = await post(`${svc}/ServerStream`, unary, echoRequest({ text: "z", responseCount: 2 }));
    assert.equal(res.status, 501);
    assert.match(json(res).message, /2 response messages/);
  });

  it("server stream: 200, data frames, end-stream with metadata", async () => {
    const res = await post(`${svc}/ServerStream`, { ...stream, "x-echo-s": "1" }, envelope(0, echoRequest({ text: "s", responseCount: 2 })));
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/connect+proto");
    assert.equal(res.headers["x-echo-s"], "1");
    const frames = splitFrames(res.body);
    assert.deepEqual(frames.map((f) => f.flags), [0, 0, 2]);
    assert.deepEqual(frames.slice(0, 2).map((f) => decodeEchoResponse(f.data).index), [0, 1]);
    assert.deepEqual(endStream(res.body), { metadata: { "x-trailer-s": ["1"] } });
  });

  it("server stream error: still HTTP 200, error in the end-stream message", async () => {
    const res = await post(`${svc}/ServerStream`, stream, envelope(0, echoRequest({ text: "s", responseCount: 1, fail: { code: 14, message: "bye" } })));
    assert.equal(res.status, 200);
    assert.deepEqual(endStream(res.body).error, { code: "unavailable", message: "bye" });
  });

  it("a request frame with unknown flags is invalid_argument in the end-stream", async () => {
    const res = await post(`${svc}/BidiStream`, stream, envelope(0x80, echoRequest({ text: "b" })));
    assert.equal(res.status, 200);
    assert.equal(endStream(res.body).error?.code, "invalid_argument");
  });

  it("a request body that ends inside a frame is invalid_argument", async () => {
    const whole = envelope(0, echoRequest({ text: "cut" }));
    const res = await post(`${svc}/ClientStream`, stream, whole.subarray(0, whole.byteLength - 1));
    assert.equal(endStream(res.body).error?.code, "invalid_argument");
    assert.match(endStream(res.body).error?.message ?? "", /inside a message/);
  });

  it("a request frame over maxRequestBytes is resource_exhausted", async () => {
    const res = await post(`${svc}/ClientStream`, stream, envelope(0, Buffer.alloc(64 * 1024 + 1)));
    assert.equal(endStream(res.body).error?.code, "resource_exhausted");
  });

  it("bidi over HTTP/1.1 answers every message of the request body", async () => {
    const body = Buffer.concat([0, 1, 2].map((i) => envelope(0, echoRequest({ text: `b${i}` }))));
    const res = await post(`${svc}/BidiStream`, stream, body);
    const frames = splitFrames(res.body);
    assert.deepEqual(frames.slice(0, -1).map((f) => decodeEchoResponse(f.data).text), ["b0", "b1", "b2"]);
    assert.deepEqual(endStream(res.body), {});
  });

  it("keeps serving after all of the above", async () => {
    const res = await post(`${svc}/Unary`, unary, echoRequest({ text: "still here" }));
    assert.equal(decodeEchoResponse(res.body).text, "still here");
  });
});

// Each of these pins a gap found by reading the Connect conformance suite
// (connectrpc/conformance, testsuites/data) against the bridge.
describe("conformance regressions", () => {
  const env = bridgedGrpcJs({ maxRequestBytes: 1000 });
  const post = env.post;

  it("request limit does not cap responses (server_message_size equal-to-server-limit)", async () => {
    const request = echoRequest({ text: "limit", payload: Buffer.alloc(990) });
    assert.ok(request.byteLength <= 1000);
    const res = await post(`${svc}/Unary`, unary, request);
    assert.equal(res.status, 200);
    assert.ok(res.body.byteLength > 1000 - 10);
  });

  it("a response over maxResponseBytes is resource_exhausted, not internal", async () => {
    const small = await startBridge(env.upstream.address, { maxResponseBytes: 100 });
    try {
      const res = await send(`${small.baseUrl}${svc}/Unary`, { headers: unary, body: echoRequest({ responseSize: 200 }) });
      assert.equal(json(res).code, "resource_exhausted");
    } finally {
      await small.close();
    }
  });

  it("an unknown method is HTTP 404 unimplemented (unexpected-uri), unary and streaming", async () => {
    const res = await post(`${svc}/NoSuchMethod`, unary, echoRequest({}));
    assert.equal(res.status, 404);
    assert.equal(json(res).code, "unimplemented");
    const streamed = await post(`/no.such.Service/Method`, stream, envelope(0, echoRequest({})));
    assert.equal(streamed.status, 404);
    assert.equal(json(streamed).code, "unimplemented");
  });

  it("a codec outside the configured ones is 415 (unexpected-codec)", async () => {
    const res = await post(`${svc}/Unary`, { "content-type": "application/foo" }, Buffer.from("x"));
    assert.equal(res.status, 415);
    assert.equal(json(res).code, "unknown");
    const get = await send(`${env.bridge.baseUrl}${svc}/Unary?encoding=foo&message=x`, { method: "GET" });
    assert.equal(get.status, 415);
  });

  it("a compressed frame without Connect-Content-Encoding is internal (unexpected-compressed-message)", async () => {
    const res = await post(`${svc}/ServerStream`, { ...stream, "connect-content-encoding": "identity" }, envelope(1, echoRequest({})));
    assert.equal(endStream(res.body).error?.code, "internal");
  });

  it("OPTIONS and other verbs are 405 (unexpected-verb)", async () => {
    const res = await send(`${env.bridge.baseUrl}${svc}/Unary`, { method: "OPTIONS" });
    assert.equal(res.status, 405);
  });

  it("an empty body with Content-Encoding gzip is not sent as a compressed message", async () => {
    const res = await post(`${svc}/Unary`, { ...unary, "content-encoding": "gzip" }, Buffer.alloc(0));
    assert.equal(res.status, 200);
  });

  it("without Accept-Encoding the client accepts the coding it sent", async () => {
    const faults = await startFaultServer();
    const viaFaults = await startBridge(faults.address);
    try {
      // node:http, because fetch always adds an Accept-Encoding of its own.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request(`${viaFaults.baseUrl}/f.F/EmptyMessage`, {
          method: "POST",
          headers: { ...unary, "content-encoding": "gzip" },
        });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on("error", reject);
        req.end(gzipSync(Buffer.from("x")));
      });
      assert.equal(status, 200);
      assert.equal(faults.requests.get("EmptyMessage")?.["grpc-accept-encoding"], "gzip");
    } finally {
      await viaFaults.close();
      await faults.close();
    }
  });
});
