/**
 * How upstream misbehaviour reaches a Connect client: every ending that is not
 * a clean grpc-status becomes the right Connect error, never a success.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { startFaultServer, type FaultServer } from "../support/fault-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { endStream, envelope, send } from "../support/raw-http.js";

const unary = { "content-type": "application/proto" };
const stream = { "content-type": "application/connect+proto" };

describe("upstream faults", () => {
  let upstream: FaultServer;
  let bridge: RunningBridge;
  before(async () => {
    upstream = await startFaultServer();
    bridge = await startBridge(upstream.address);
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  const call = (method: string, headers: Record<string, string> = unary, body: Uint8Array = Buffer.from([])) =>
    send(`${bridge.baseUrl}/fault.v1.FaultService/${method}`, { headers, body });
  const errorOf = (res: { body: Buffer }) => JSON.parse(res.body.toString("utf8"));

  for (const [method, code, status] of [
    ["ResetRefusedStream", "unavailable", 503],
    ["ResetCancel", "canceled", 499],
    ["ResetEnhanceYourCalm", "resource_exhausted", 429],
    ["ResetInternalError", "internal", 500],
    ["ResetProtocolError", "internal", 500],
  ] as const) {
    it(`RST_STREAM ${method.slice(5)} -> ${code}`, async () => {
      const res = await call(method);
      assert.equal(res.status, status);
      assert.equal(errorOf(res).code, code);
    });
  }

  it("a grpc-message that is not valid percent-encoding arrives raw (was an uncaught URIError that crashed the bridge)", async () => {
    const res = await call("MalformedMessage");
    assert.equal(res.status, 500);
    assert.deepEqual(errorOf(res), { code: "internal", message: "bad %zz 100%" });
    const next = await call("TrailersOnly");
    assert.equal(errorOf(next).code, "permission_denied", "the bridge still serves");
  });

  it("RST_STREAM REFUSED_STREAM before any header -> unavailable", async () => {
    const res = await call("RefuseBeforeHeaders");
    assert.equal(res.status, 503);
    assert.equal(errorOf(res).code, "unavailable");
  });

  it("the upstream connection dies mid-stream: unavailable, and the next call gets a new connection", async () => {
    const res = await call("KillMidStream", stream, envelope(0, Buffer.from([])));
    assert.equal(res.status, 200);
    assert.equal(endStream(res.body).error?.code, "unavailable");
    const next = await call("TrailersOnly");
    assert.equal(errorOf(next).code, "permission_denied");
  });

  it("a graceful GOAWAY lets the stream in flight finish, and new calls go to a new connection", async () => {
    const res = await call("GoawayMidStream", stream, envelope(0, Buffer.from([])));
    assert.deepEqual(endStream(res.body), {});
    const next = await call("TrailersOnly");
    assert.equal(errorOf(next).code, "permission_denied");
  });

  it("bug: a reset of the last stream on a connection retired by a graceful GOAWAY was reported as \"upstream connection lost\" (unavailable), not as the reset (internal)", async () => {
    const res = await call("GoawayThenReset", stream, envelope(0, Buffer.from([])));
    assert.equal(res.status, 200);
    const end = endStream(res.body);
    assert.equal(end.error?.code, "internal", JSON.stringify(end));
    assert.match(end.error?.message ?? "", /INTERNAL_ERROR/);
    const next = await call("TrailersOnly");
    assert.equal(errorOf(next).code, "permission_denied");
  });

  it("a GOAWAY with an error and a dropped connection: unavailable, then a new connection", async () => {
    const res = await call("GoawayErrorMidStream", stream, envelope(0, Buffer.from([])));
    assert.equal(endStream(res.body).error?.code, "unavailable");
    const next = await call("TrailersOnly");
    assert.equal(errorOf(next).code, "permission_denied");
  });

  it("a response that ends without grpc-status is an internal error, not a success", async () => {
    const res = await call("NoStatus");
    assert.equal(res.status, 500);
    assert.equal(errorOf(res).code, "internal");
    assert.match(errorOf(res).message, /without grpc-status/);
  });

  it("HTTP 503 without grpc-status maps to unavailable", async () => {
    const res = await call("Http503");
    assert.equal(errorOf(res).code, "unavailable");
  });

  it("HTTP 404 without grpc-status maps to unimplemented", async () => {
    const res = await call("Http404");
    assert.equal(errorOf(res).code, "unimplemented");
  });

  it("a non-gRPC content type is an internal error naming it", async () => {
    const res = await call("HtmlContentType");
    assert.equal(errorOf(res).code, "internal");
    assert.match(errorOf(res).message, /text\/html/);
  });

  it("trailers-only: status, percent-decoded message and metadata", async () => {
    const res = await call("TrailersOnly");
    assert.equal(res.status, 403);
    assert.deepEqual(errorOf(res), { code: "permission_denied", message: "a b%c" });
    assert.equal(res.headers["x-meta"], "m");
  });

  it("trailers-only in a stream keeps its metadata in the end-stream message", async () => {
    const res = await call("TrailersOnly", stream, envelope(0, Buffer.from([])));
    assert.equal(res.status, 200);
    assert.deepEqual(endStream(res.body), {
      error: { code: "permission_denied", message: "a b%c" },
      metadata: { "x-meta": ["m"] },
    });
  });

  it("a truncated final frame in a unary response is an internal error", async () => {
    const res = await call("TruncatedFrame");
    assert.equal(errorOf(res).code, "internal");
    assert.match(errorOf(res).message, /inside a message/);
  });

  it("a truncated final frame in a stream cuts the connection instead of faking an end", async () => {
    await assert.rejects(call("TruncatedFrame", stream, envelope(0, Buffer.from([]))));
  });

  it("a frame with unknown flags is an internal error", async () => {
    const res = await call("BadFlags");
    assert.equal(errorOf(res).code, "internal");
    assert.match(errorOf(res).message, /invalid flags 0x80/);
  });

  it("an upstream that never answers: deadline_exceeded, and the upstream stream is cancelled", async () => {
    const res = await call("Silent", { ...unary, "connect-timeout-ms": "100" });
    assert.equal(res.status, 504);
    assert.equal(errorOf(res).code, "deadline_exceeded");
    // RST_STREAM(CANCEL) reaches the server a moment after the answer.
    assert.equal(await upstream.closed("Silent"), 8 /* CANCEL */);
  });
});

describe("unreachable upstream", () => {
  it("answers unavailable and keeps serving", async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = await startBridge("127.0.0.1:9");
    const port = probe.port;
    await probe.close();
    const bridge = await startBridge(`127.0.0.1:${port}`);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await send(`${bridge.baseUrl}/a.B/C`, { headers: unary, body: Buffer.from([]) });
        assert.equal(res.status, 503);
        const error = JSON.parse(res.body.toString("utf8"));
        assert.equal(error.code, "unavailable");
        assert.match(error.message, /ECONNREFUSED/);
      }
    } finally {
      await bridge.close();
    }
  });
});

describe("silent upstream", () => {
  it(
    "an upstream that accepts TCP and never speaks HTTP/2 fails a zero-config call without a deadline after the connect timeout, logged (it hung 60 s and more, with no log line)",
    { timeout: 30_000 },
    async () => {
      const accepted: net.Socket[] = [];
      const silent = net.createServer((socket) => accepted.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
      const logged: { level: number; msg: string }[] = [];
      const bridge = await startBridge(address, {
        fastify: { logger: { level: "warn", stream: { write: (line: string) => void logged.push(JSON.parse(line)) } } },
      });
      try {
        const started = performance.now();
        const res = await send(`${bridge.baseUrl}/a.B/C`, { headers: unary, body: Buffer.from([]) });
        const elapsed = performance.now() - started;
        assert.equal(res.status, 503);
        const error = JSON.parse(res.body.toString("utf8"));
        assert.equal(error.code, "unavailable");
        assert.match(error.message, new RegExp(`${address}: connect timeout after 5000 ms`));
        // The config layer's default connect timeout, not TCP's minutes.
        assert.ok(elapsed >= 4900 && elapsed < 15_000, `failed after ${Math.round(elapsed)} ms`);
        assert.ok(accepted.length >= 1, "the bridge did connect");
        assert.ok(
          logged.some((line) => line.level === 40 && line.msg.includes(`connection to ${address} failed`)),
          JSON.stringify(logged),
        );
      } finally {
        await bridge.close();
        for (const socket of accepted) socket.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    },
  );
});
