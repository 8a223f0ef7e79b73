/**
 * gRPC-Web on the wire, seen with raw HTTP: trailer frames, trailers-only
 * responses, text mode split at awkward places, the bridge's own errors, and
 * CORS for browsers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { useBridgedPair } from "../support/bridged-pair.js";
import { decodeEchoResponse, echoRequest, envelope, send, splitFrames } from "../support/raw-http.js";

const svc = "/bridge.test.v1.TestService";
const binary = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
const text = { "content-type": "application/grpc-web-text", "x-grpc-web": "1" };

/** Sends a body in the given pieces, each its own write, and reads the answer. */
function sendInPieces(url: string, headers: Record<string, string>, pieces: Buffer[]) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
    (resolve, reject) => {
      const req = request(url, { method: "POST", headers: { ...headers, "transfer-encoding": "chunked" } });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on("error", reject);
      (async () => {
        for (const piece of pieces) {
          req.write(piece);
          await new Promise((r) => setImmediate(r));
        }
        req.end();
      })();
    },
  );
}

/** Decodes a text-mode body: concatenated base64 segments, each possibly padded. */
function decodeText(body: Buffer): Buffer {
  const segments = body.toString("latin1").match(/[^=]*=*/g)!.filter((s) => s.length > 0);
  return Buffer.concat(segments.map((s) => Buffer.from(s, "base64")));
}

function trailerBlock(frames: { flags: number; data: Buffer }[]): string {
  const last = frames[frames.length - 1];
  assert.equal(last.flags, 0x80, "the last frame is the trailer frame");
  return last.data.toString("latin1");
}

describe("gRPC-Web wire format", () => {
  const servers = useBridgedPair();

  it("binary: data frames, then a trailer frame with status and trailers", async () => {
    const res = await send(`${servers.bridge.baseUrl}${svc}/ServerStream`, {
      headers: { ...binary, "x-echo-k": "v" },
      body: envelope(0, echoRequest({ text: "w", responseCount: 2 })),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/grpc-web+proto");
    assert.equal(res.headers["x-echo-k"], "v");
    const frames = splitFrames(res.body);
    assert.deepEqual(frames.map((f) => f.flags), [0, 0, 0x80]);
    assert.equal(decodeEchoResponse(frames[1].data).index, 1);
    // grpc-js adds grpc-message "OK"; the upstream's status fields pass as they are.
    assert.equal(trailerBlock(frames), "grpc-status: 0\r\ngrpc-message: OK\r\nx-trailer-k: v\r\n");
  });

  it("text: a request split mid-group, with padded segments, and a base64 response", async () => {
    // Two messages encoded separately (so padding sits mid-body), cut at odd places.
    const body = Buffer.from(
      envelope(0, echoRequest({ text: "a" })).toString("base64") + envelope(0, echoRequest({ text: "bc" })).toString("base64"),
    );
    assert.ok(body.indexOf("=") < body.length - 2, "padding in the middle");
    const pieces = [body.subarray(0, 3), body.subarray(3, 9), body.subarray(9, 10), body.subarray(10)];
    const res = await sendInPieces(`${servers.bridge.baseUrl}${svc}/ClientStream`, text, pieces);
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/grpc-web-text+proto");
    const frames = splitFrames(decodeText(res.body));
    assert.equal(decodeEchoResponse(frames[0].data).text, "a,bc");
    assert.match(trailerBlock(frames), /^grpc-status: 0\r\n/);
  });

  it("text: a body that is not base64 is INVALID_ARGUMENT", async () => {
    const res = await send(`${servers.bridge.baseUrl}${svc}/ClientStream`, { headers: text, body: Buffer.from("AAAA*AAA") });
    assert.equal(res.status, 200);
    assert.equal(res.headers["grpc-status"], "3");
    assert.match(decodeURIComponent(res.headers["grpc-message"]), /not valid base64/);
  });

  it("an upstream error with details: status in the trailer frame, details-bin untouched", async () => {
    const res = await send(`${servers.bridge.baseUrl}${svc}/Unary`, {
      headers: binary,
      body: envelope(0, echoRequest({ text: "e", fail: { code: 5, message: "no such thing", withDetails: true } })),
    });
    const block = statusOf(res);
    assert.equal(block["grpc-status"], "5");
    assert.equal(decodeURIComponent(block["grpc-message"]), "no such thing");
    assert.ok(Buffer.from(block["grpc-status-details-bin"], "base64").includes(Buffer.from("bridge.test.v1.ErrorDetail")));
  });

  it("trailers-only upstream response: status and metadata in the headers, empty body", async () => {
    const res = await send(`${servers.faultBridge.baseUrl}/f.F/TrailersOnly`, { headers: binary, body: envelope(0, Buffer.alloc(0)) });
    assert.equal(res.status, 200);
    assert.equal(res.headers["grpc-status"], "7");
    assert.equal(res.headers["grpc-message"], "a%20b%25c");
    assert.equal(res.headers["x-meta"], "m");
    assert.equal(res.body.byteLength, 0);
  });

  it("the bridge's own errors are gRPC-Web statuses: bad grpc-timeout, bad path", async () => {
    const timeout = await send(`${servers.bridge.baseUrl}${svc}/Unary`, {
      headers: { ...binary, "grpc-timeout": "soon" },
      body: envelope(0, echoRequest({})),
    });
    assert.equal(timeout.headers["grpc-status"], "3");
    const path = await send(`${servers.bridge.baseUrl}/not-a-method`, { headers: binary, body: envelope(0, echoRequest({})) });
    assert.equal(path.status, 200);
    assert.equal(path.headers["grpc-status"], "12");
  });

  it("grpc-timeout is enforced and cancels the upstream", async () => {
    const res = await send(`${servers.bridge.baseUrl}${svc}/Unary`, {
      headers: { ...binary, "grpc-timeout": "100m" },
      body: envelope(0, echoRequest({ text: "gw-deadline", delayMs: 5000 })),
    });
    assert.equal(statusOf(res)["grpc-status"], "4");
    await servers.upstream.observations.cancelledCall("gw-deadline");
  });
});

/** The status fields, from the headers (trailers-only) or the trailer frame. */
function statusOf(res: { headers: Record<string, string>; body: Buffer }): Record<string, string> {
  return res.headers["grpc-status"] !== undefined ? res.headers : parseBlock(trailerBlock(splitFrames(res.body)));
}

function parseBlock(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

describe("CORS", () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  const allowed = "http://app.allowed.test";
  before(async () => {
    upstream = await startGrpcJsServer();
    bridge = await startBridge(upstream.address, {
      cors: { allowedOrigins: [allowed], allowedHeaders: ["Authorization", "X-Echo-K"], maxAgeSeconds: 600 },
    });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("answers a preflight from an allowed origin with the protocol's headers", async () => {
    const res = await send(`${bridge.baseUrl}${svc}/Unary`, {
      method: "OPTIONS",
      headers: {
        origin: allowed,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,x-grpc-web,authorization",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers["access-control-allow-origin"], allowed);
    const allowHeaders = res.headers["access-control-allow-headers"].toLowerCase();
    for (const h of ["content-type", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "x-grpc-web", "x-user-agent", "authorization", "x-echo-k"]) {
      assert.ok(allowHeaders.includes(h), h);
    }
    assert.equal(res.headers["access-control-max-age"], "600");
  });

  it("gives a disallowed origin no CORS headers", async () => {
    const preflight = await send(`${bridge.baseUrl}${svc}/Unary`, {
      method: "OPTIONS",
      headers: { origin: "http://evil.test", "access-control-request-method": "POST" },
    });
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
    const call = await send(`${bridge.baseUrl}${svc}/Unary`, {
      headers: { origin: "http://evil.test", "content-type": "application/proto" },
      body: echoRequest({}),
    });
    assert.equal(call.headers["access-control-allow-origin"], undefined);
  });

  it("exposes status headers and each response's metadata to the page", async () => {
    const res = await send(`${bridge.baseUrl}${svc}/Unary`, {
      headers: { ...binary, origin: allowed, "x-echo-k": "v" },
      body: envelope(0, echoRequest({ text: "c" })),
    });
    assert.equal(res.headers["access-control-allow-origin"], allowed);
    const exposed = res.headers["access-control-expose-headers"].toLowerCase().split(/,\s*/);
    for (const h of ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-echo-k"]) assert.ok(exposed.includes(h), h);
    const connect = await send(`${bridge.baseUrl}${svc}/Unary`, {
      headers: { "content-type": "application/proto", origin: allowed, "x-echo-k": "v" },
      body: echoRequest({ text: "c" }),
    });
    const connectExposed = connect.headers["access-control-expose-headers"].toLowerCase().split(/,\s*/);
    for (const h of ["x-echo-k", "trailer-x-trailer-k"]) assert.ok(connectExposed.includes(h), h);
  });
});
