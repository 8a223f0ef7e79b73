/**
 * Compression across the bridge: codings both sides speak pass through
 * untouched; others are converted (unary); decompression bombs are stopped
 * while inflating; responses follow what the client accepts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, createConnectTransport } from "@connectrpc/connect-node";
import { TestService, EchoRequestSchema } from "../../gen/bridge/test/v1/test_pb.js";
import { useBridgedPair } from "../support/bridged-pair.js";
import { decodeEchoResponse, echoRequest, envelope, endStream, splitFrames } from "../support/raw-http.js";

const svc = "/bridge.test.v1.TestService";

/** node:http, so that no Accept-Encoding is added behind the test's back. */
function post(url: string, headers: Record<string, string>, body: Buffer) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
    const req = request(url, { method: "POST", headers });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("compression", () => {
  const servers = useBridgedPair({ maxRequestBytes: 1 << 20 });

  for (const [name, compression] of [["gzip", compressionGzip], ["br", compressionBrotli]] as const) {
    it(`connect-node with ${name} both ways, through the bridge to grpc-js (which has no br)`, async () => {
      const client = createClient(
        TestService,
        createConnectTransport({
          baseUrl: servers.bridge.baseUrl,
          httpVersion: "1.1",
          sendCompression: compression,
          acceptCompression: [compression],
          compressMinBytes: 0,
        }),
      );
      const res = await client.unary({ text: name, payload: Buffer.alloc(10_000, 1), responseSize: 20_000 });
      assert.equal(res.text, name);
      assert.equal(res.payload.byteLength, 20_000);
    });
  }

  it("gzip passes through to the upstream untouched (grpc-encoding: gzip)", async () => {
    const res = await post(`${servers.faultBridge.baseUrl}/f.F/EmptyMessage`, { "content-type": "application/proto", "content-encoding": "gzip" }, gzipSync(Buffer.from("x")));
    assert.equal(res.status, 200);
    assert.equal(servers.faults.requests.get("EmptyMessage")?.["grpc-encoding"], "gzip");
  });

  it("br is converted: the upstream gets an uncompressed message", async () => {
    const res = await post(`${servers.faultBridge.baseUrl}/f.F/EmptyMessage`, { "content-type": "application/proto", "content-encoding": "br" }, brotliCompressSync(Buffer.from("x")));
    assert.equal(res.status, 200);
    assert.equal(servers.faults.requests.get("EmptyMessage")?.["grpc-encoding"], undefined);
    assert.equal(servers.faults.requests.get("EmptyMessage")?.["grpc-accept-encoding"], undefined, "br is not offered to the upstream");
  });

  for (const [name, squeeze] of [["gzip", gzipSync], ["br", brotliCompressSync]] as const) {
    it(`a ${name} decompression bomb is resource_exhausted, stopped while inflating`, async () => {
      const bomb = squeeze(echoRequest({ payload: Buffer.alloc(16 << 20) }));
      assert.ok(bomb.byteLength < 1 << 20, "small enough to pass the compressed-size limit");
      const started = Date.now();
      const res = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto", "content-encoding": name }, bomb);
      assert.equal(res.status, 429);
      assert.equal(JSON.parse(res.body.toString()).code, "resource_exhausted");
      assert.ok(Date.now() - started < 2000, "inflating stopped at the limit");
    });
  }

  it("a corrupt compressed body is invalid_argument", async () => {
    const res = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto", "content-encoding": "gzip" }, Buffer.from("not gzip at all"));
    assert.equal(JSON.parse(res.body.toString()).code, "invalid_argument");
  });

  it("large responses are compressed with what the client prefers; small ones and clients that accept nothing are not", async () => {
    const large = echoRequest({ text: "big", responseSize: 8192 });
    const br = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto", "accept-encoding": "br, gzip" }, large);
    assert.equal(br.headers["content-encoding"], "br");
    assert.equal(decodeEchoResponse(brotliDecompressSync(br.body)).payload.byteLength, 8192);
    const gz = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto", "accept-encoding": "gzip" }, large);
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.equal(decodeEchoResponse(gunzipSync(gz.body)).text, "big");
    const small = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto", "accept-encoding": "gzip" }, echoRequest({ text: "s" }));
    assert.equal(small.headers["content-encoding"], undefined);
    const none = await post(`${servers.bridge.baseUrl}${svc}/Unary`, { "content-type": "application/proto" }, large);
    assert.equal(none.headers["content-encoding"], undefined);
    assert.equal(decodeEchoResponse(none.body).payload.byteLength, 8192);
  });

  it("a br request without Accept-Encoding gets a br response (bug: converting the request forgot the client reads br)", async () => {
    const res = await post(
      `${servers.bridge.baseUrl}${svc}/Unary`,
      { "content-type": "application/proto", "content-encoding": "br" },
      brotliCompressSync(echoRequest({ text: "br", responseSize: 8192 })),
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], "br");
    assert.equal(decodeEchoResponse(brotliDecompressSync(res.body)).text, "br");
  });

  it("an upstream that compresses regardless is decompressed for a client that does not accept it", async () => {
    const res = await post(`${servers.faultBridge.baseUrl}/f.F/GzipAlways`, { "content-type": "application/proto" }, Buffer.alloc(0));
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], undefined);
    assert.equal(decodeEchoResponse(res.body).text, "zip!");
  });

  for (const [name, compression] of [["gzip", compressionGzip], ["br", compressionBrotli]] as const) {
    it(`client and bidi streams with ${name} messages reach grpc-js (br converted per message)`, async () => {
      const client = createClient(
        TestService,
        createConnectTransport({ baseUrl: servers.bridge.baseUrl, httpVersion: "1.1", sendCompression: compression, compressMinBytes: 0 }),
      );
      async function* requests() {
        for (const text of ["a", "b", "c"]) yield create(EchoRequestSchema, { text, payload: Buffer.alloc(3000, text) });
      }
      const res = await client.clientStream(requests());
      assert.equal(res.text, "a,b,c");
      assert.equal(res.payload.byteLength, 9000);
      const replies: string[] = [];
      for await (const r of client.bidiStream(requests())) replies.push(r.text);
      assert.deepEqual(replies, ["a", "b", "c"]);
    });
  }

  for (const [name, squeeze] of [["gzip (passed through)", gzipSync], ["br (converted)", brotliCompressSync]] as const) {
    it(`a decompression bomb inside a ${name} stream is resource_exhausted in the end-stream`, async () => {
      const bomb = squeeze(echoRequest({ payload: Buffer.alloc(16 << 20) }));
      const res = await post(
        `${servers.bridge.baseUrl}${svc}/ClientStream`,
        { "content-type": "application/connect+proto", "connect-content-encoding": name.startsWith("gzip") ? "gzip" : "br" },
        envelope(1, bomb),
      );
      assert.equal(endStream(res.body).error?.code, "resource_exhausted");
    });
  }

  it("streamed responses: large messages are compressed with the client's coding, small ones are not", async () => {
    const res = await post(
      `${servers.bridge.baseUrl}${svc}/ServerStream`,
      { "content-type": "application/connect+proto", "connect-accept-encoding": "br" },
      envelope(0, echoRequest({ text: "s", responseCount: 2, responseSize: 8192 })),
    );
    assert.equal(res.headers["connect-content-encoding"], "br");
    const frames = splitFrames(res.body);
    assert.deepEqual(frames.map((f) => f.flags), [1, 1, 2]);
    assert.equal(decodeEchoResponse(brotliDecompressSync(frames[1].data)).payload.byteLength, 8192);
    const small = await post(
      `${servers.bridge.baseUrl}${svc}/ServerStream`,
      { "content-type": "application/grpc-web+proto", "grpc-accept-encoding": "gzip" },
      envelope(0, echoRequest({ text: "s", responseCount: 2 })),
    );
    assert.deepEqual(splitFrames(small.body).map((f) => f.flags), [0, 0, 0x80]);
  });

  it("a streamed response compressed against grpc-accept-encoding is decompressed for the client", async () => {
    for (const contentType of ["application/connect+proto", "application/grpc-web+proto"]) {
      const res = await post(`${servers.faultBridge.baseUrl}/f.F/GzipAlways`, { "content-type": contentType }, envelope(0, Buffer.alloc(0)));
      assert.equal(res.headers["connect-content-encoding"] ?? res.headers["grpc-encoding"], undefined, contentType);
      const frames = splitFrames(res.body);
      assert.equal(frames[0].flags, 0, contentType);
      assert.equal(decodeEchoResponse(frames[0].data).text, "zip!", contentType);
    }
  });

  it("a stream coding nobody here can read is unimplemented, naming the usable ones", async () => {
    const res = await post(
      `${servers.bridge.baseUrl}${svc}/ClientStream`,
      { "content-type": "application/connect+proto", "connect-content-encoding": "snappy" },
      envelope(0, echoRequest({})),
    );
    const error = endStream(res.body).error;
    assert.equal(error?.code, "unimplemented");
    assert.match(error?.message ?? "", /gzip/);
  });
});
