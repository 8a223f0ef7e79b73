/**
 * Hostile and broken requests against a bridge in front of a real @grpc/grpc-js
 * upstream (and the fault server, where we must see what reached the upstream).
 * Every request goes over a bare TCP socket, so nothing is cleaned up on the
 * way. Each case checks the code and that the error is well-formed in the
 * client's own protocol; the last test checks the bridge still serves.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startBridge } from "../support/bridge.js";
import { useBridgedPair } from "../support/bridged-pair.js";
import { decodeEchoResponse, echoRequest, envelope } from "../support/raw-http.js";
import {
  chunk,
  lastChunk,
  parseResponse,
  rawExchange,
  rawRequest,
  requestHead,
  type ParsedResponse,
  type RawOutcome,
  type RawStep,
} from "../support/raw-socket.js";

const svc = "/bridge.test.v1.TestService";
type Header = [string, string | Buffer];
const unary: Header[] = [["content-type", "application/proto"]];
const stream: Header[] = [["content-type", "application/connect+proto"]];
const web: Header[] = [["content-type", "application/grpc-web+proto"], ["x-grpc-web", "1"]];
const webText: Header[] = [["content-type", "application/grpc-web-text"], ["x-grpc-web", "1"]];

const connectCodes = new Map<string, number>([
  ["canceled", 1], ["unknown", 2], ["invalid_argument", 3], ["deadline_exceeded", 4], ["not_found", 5],
  ["already_exists", 6], ["permission_denied", 7], ["resource_exhausted", 8], ["failed_precondition", 9],
  ["aborted", 10], ["out_of_range", 11], ["unimplemented", 12], ["internal", 13], ["unavailable", 14],
  ["data_loss", 15], ["unauthenticated", 16],
]);

/**
 * Resolves once the bridge's own clock has moved `ms`: a unary call that
 * stalls mid-body with Connect-Timeout-Ms `ms` gets its deadline_exceeded.
 * Node fires timers in order, so any timer of the bridge armed before this
 * call with a delay up to `ms` has fired by then: a "nothing happened in
 * that time" check waits for this event, not for a sleep of the test's own.
 */
async function bridgeDeadlinePassed(port: number, ms: number): Promise<void> {
  const res = await rawExchange(
    port,
    [rawRequest("POST", `${svc}/Unary`, [...unary, ["connect-timeout-ms", String(ms)]], Buffer.from("abc"), { contentLength: 100 })],
    { timeoutMs: ms + 5000 },
  );
  assertConnectError(res, 504, "deadline_exceeded", `reference deadline of ${ms} ms`);
}

/**
 * Resolves when the bridge in front of the fault server has forwarded a call
 * that came after everything before it. The bridge sends calls to the fault
 * server on one HTTP/2 connection, in order: if an earlier request had been
 * forwarded, the fault server has seen it by now.
 */
let barriers = 0;
async function afterEverythingForwarded(servers: { faultBridge: { port: number }; faults: { requests: Map<string, unknown> } }): Promise<void> {
  const method = `Barrier${barriers++}`;
  const res = await rawExchange(servers.faultBridge.port, [rawRequest("POST", `/f.F/${method}`, unary, echoRequest({ text: "barrier" }))]);
  assert.ok(res.response !== undefined, "the barrier call was answered");
  assert.ok(servers.faults.requests.has(method), "the barrier call reached the fault server");
}

/** Resolves when the bridge's end of the next connection accepted by `bridge` has closed. */
function nextConnectionClosed(bridge: { app: { server: import("node:net").Server } }): Promise<void> {
  return new Promise((resolve) => bridge.app.server.once("connection", (socket: import("node:net").Socket) => socket.once("close", () => resolve())));
}

function responseOf(outcome: RawOutcome, what: string): ParsedResponse {
  assert.ok(
    outcome.response !== undefined,
    `${what}: no complete response (timedOut=${outcome.timedOut}, serverClosed=${outcome.serverClosed}, got ${JSON.stringify(outcome.bytes.toString("latin1").slice(0, 200))})`,
  );
  return outcome.response;
}

/** A Connect unary error: the HTTP status, application/json, `{code, message?}` with a known code. */
function assertConnectError(outcome: RawOutcome, httpStatus: number, code: string, what = code): { code: string; message?: string } {
  const res = responseOf(outcome, what);
  assert.equal(res.status, httpStatus, `${what}: HTTP status (body ${res.body.toString("latin1").slice(0, 200)})`);
  assert.match(res.headers["content-type"] ?? "", /^application\/json\b/, `${what}: content-type`);
  const json = JSON.parse(res.body.toString("utf8")) as { code: string; message?: string };
  assert.ok(connectCodes.has(json.code), `${what}: "${json.code}" is a Connect code`);
  if (json.message !== undefined) assert.equal(typeof json.message, "string");
  assert.equal(json.code, code, `${what}: code (message ${json.message})`);
  return json;
}

/**
 * A refusal before any protocol is known, as connect-go's Handler answers
 * one: the bare HTTP status with its negotiation header, and no body.
 */
function assertBareRefusal(outcome: RawOutcome, httpStatus: number, header: "accept-post" | "allow", what: string): void {
  const res = responseOf(outcome, what);
  assert.equal(res.status, httpStatus, `${what}: HTTP status (body ${res.body.toString("latin1").slice(0, 200)})`);
  assert.ok((res.headers[header] ?? "").length > 0, `${what}: ${header}`);
  assert.equal(res.headers["content-type"], undefined, `${what}: no content-type`);
  assert.equal(res.body.byteLength, 0, `${what}: no body`);
}

/** Connect streaming: HTTP 200, frames that end on a boundary, an end-stream frame last. */
function connectEndStream(outcome: RawOutcome, what = "end-stream"): { frames: { flags: number; data: Buffer }[]; end: { error?: { code: string; message?: string }; metadata?: unknown } } {
  const res = responseOf(outcome, what);
  assert.equal(res.status, 200, `${what}: HTTP status (body ${res.body.toString("latin1").slice(0, 200)})`);
  assert.match(res.headers["content-type"] ?? "", /^application\/connect\+proto$/, `${what}: content-type`);
  const frames = frameList(res.body, what);
  const last = frames[frames.length - 1];
  assert.ok(last !== undefined && last.flags === 0x02, `${what}: last frame is an end-stream frame`);
  assert.ok(frames.slice(0, -1).every((f) => f.flags === 0), `${what}: only data frames before it`);
  const end = JSON.parse(last.data.toString("utf8"));
  if (end.error !== undefined) assert.ok(connectCodes.has(end.error.code), `${what}: "${end.error.code}" is a Connect code`);
  return { frames, end };
}

function assertEndStreamError(outcome: RawOutcome, code: string, what = code): string {
  const { end } = connectEndStream(outcome, what);
  assert.equal(end.error?.code, code, `${what}: end-stream error (${JSON.stringify(end)})`);
  return end.error?.message ?? "";
}

/** gRPC-Web: HTTP 200 and a grpc-status in the headers (empty body) or in a trailer frame. */
function grpcWebStatus(outcome: RawOutcome, what = "grpc-web"): { status: string; message: string; frames: { flags: number; data: Buffer }[] } {
  const res = responseOf(outcome, what);
  assert.equal(res.status, 200, `${what}: HTTP status`);
  const contentType = res.headers["content-type"] ?? "";
  assert.match(contentType, /^application\/grpc-web(-text)?\+proto$/, `${what}: content-type`);
  if (res.headers["grpc-status"] !== undefined) {
    assert.equal(res.body.byteLength, 0, `${what}: a trailers-only response has no body`);
    return { status: res.headers["grpc-status"], message: decodeURIComponent(res.headers["grpc-message"] ?? ""), frames: [] };
  }
  const body = contentType.includes("-text") ? decodeTextBody(res.body) : res.body;
  const frames = frameList(body, what);
  const last = frames[frames.length - 1];
  assert.ok(last !== undefined && last.flags === 0x80, `${what}: last frame is the trailer frame`);
  const block: Record<string, string> = {};
  for (const line of last.data.toString("latin1").split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) block[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  assert.match(block["grpc-status"] ?? "", /^\d+$/, `${what}: trailer frame has grpc-status`);
  return { status: block["grpc-status"], message: decodeURIComponent(block["grpc-message"] ?? ""), frames };
}

function assertGrpcWebError(outcome: RawOutcome, status: number, what = `grpc-status ${status}`): string {
  const got = grpcWebStatus(outcome, what);
  assert.equal(got.status, String(status), `${what}: grpc-status (message ${got.message})`);
  return got.message;
}

function frameList(body: Buffer, what: string): { flags: number; data: Buffer }[] {
  const frames: { flags: number; data: Buffer }[] = [];
  let pos = 0;
  while (pos < body.byteLength) {
    assert.ok(body.byteLength - pos >= 5, `${what}: body ends inside a frame header`);
    const length = body.readUInt32BE(pos + 1);
    assert.ok(body.byteLength - pos - 5 >= length, `${what}: body ends inside a frame`);
    frames.push({ flags: body[pos], data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return frames;
}

function decodeTextBody(body: Buffer): Buffer {
  const segments = body.toString("latin1").match(/[^=]*=*/g)!.filter((s) => s.length > 0);
  return Buffer.concat(segments.map((s) => Buffer.from(s, "base64")));
}

/**
 * An HTTP-level rejection by Node's parser (Fastify's clientError handler):
 * the status, and the server closes the connection. `outcome` must come from
 * an exchange run with `closing`.
 */
function assertHttpRejection(outcome: RawOutcome, httpStatus: number, what: string): void {
  const res = responseOf(outcome, what);
  assert.equal(res.status, httpStatus, what);
  assert.ok(outcome.serverClosed, `${what}: connection closed after the rejection`);
}

/** Exchange options that wait for the server to close the connection. */
const closing = { waitForClose: true, timeoutMs: 1500 };

describe("hostile input", () => {
  const servers = useBridgedPair();
  const exchange = (steps: RawStep[], options?: { timeoutMs?: number; waitForClose?: boolean }) =>
    rawExchange(servers.bridge.port, steps, options);
  const post = (path: string, headers: Header[], body: Buffer) => exchange([rawRequest("POST", path, headers, body)]);
  const message = (text: string) => echoRequest({ text });

  describe("malformed envelopes", () => {
    it("a Connect stream that ends inside a frame header is invalid_argument", async () => {
      const res = await post(`${svc}/ClientStream`, stream, Buffer.from([0, 0, 0]));
      assert.match(assertEndStreamError(res, "invalid_argument"), /inside a message/);
    });

    it("a Connect stream whose length prefix is larger than the body is invalid_argument", async () => {
      const body = Buffer.concat([Buffer.from([0, 0, 0, 0x03, 0xe8]), message("short")]);
      assert.match(assertEndStreamError(await post(`${svc}/ClientStream`, stream, body), "invalid_argument"), /inside a message/);
    });

    it("a length prefix of 4 GiB - 1 is resource_exhausted before anything is buffered", async () => {
      const body = Buffer.concat([Buffer.from([0, 0xff, 0xff, 0xff, 0xff]), message("huge")]);
      assertEndStreamError(await post(`${svc}/ClientStream`, stream, body), "resource_exhausted");
    });

    it("gRPC-Web: a truncated frame and a length prefix larger than the body are INVALID_ARGUMENT", async () => {
      const whole = envelope(0, message("cut"));
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, web, whole.subarray(0, 6)), 3), /inside a message/);
      const long = Buffer.concat([Buffer.from([0, 0, 0, 0x03, 0xe8]), message("short")]);
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, web, long), 3), /inside a message/);
    });

    it("unknown flag bits are invalid_argument (Connect streaming) / INVALID_ARGUMENT (gRPC-Web)", async () => {
      for (const flags of [0x02, 0x04, 0x40, 0x80, 0x81, 0xff]) {
        const body = envelope(flags, echoRequest({ text: "f", responseCount: 1 }));
        assert.match(assertEndStreamError(await post(`${svc}/ServerStream`, stream, body), "invalid_argument", `flags 0x${flags.toString(16)}`), /invalid flags/);
        assert.match(assertGrpcWebError(await post(`${svc}/ServerStream`, web, body), 3, `gRPC-Web flags 0x${flags.toString(16)}`), /invalid flags/);
      }
    });

    it("a second frame with bad flags after a good one still ends with a well-formed error", async () => {
      const body = Buffer.concat([envelope(0, message("ok-then-bad")), envelope(0x80, message("bad"))]);
      const { end } = connectEndStream(await post(`${svc}/BidiStream`, stream, body));
      assert.equal(end.error?.code, "invalid_argument");
    });
  });

  describe("invalid base64", () => {
    it("GET message with characters outside base64url is invalid_argument", async () => {
      for (const bad of ["a*b", "%25%25%25", "ab%00cd", "QQ==QQ==", "a+b", "a%20b"]) {
        const res = await exchange([rawRequest("GET", `${svc}/Unary?encoding=proto&base64=1&message=${bad}`, [])]);
        assertConnectError(res, 400, "invalid_argument", bad);
      }
    });

    it(
      "GET message whose base64 length is 1 mod 4 is invalid_argument",
      async () => {
        // 6 bytes are 8 base64 characters; a ninth cannot be part of any encoding.
        const valid = message("abcd").toString("base64url");
        assert.equal(valid.length % 4, 0);
        const res = await exchange([rawRequest("GET", `${svc}/Unary?encoding=proto&base64=1&message=${valid}A`, [])]);
        assertConnectError(res, 400, "invalid_argument");
      },
    );

    it("gRPC-Web text: a body that is not base64, or is cut mid-group, is INVALID_ARGUMENT", async () => {
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, webText, Buffer.from("AAAA*AAA")), 3), /not valid base64/);
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, webText, Buffer.from("AA=A")), 3), /not valid base64/);
      const cut = Buffer.from(envelope(0, message("cut")).toString("base64").slice(0, -1));
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, webText, cut), 3), /inside a message/);
    });

    it("-bin request headers with invalid base64 are invalid_argument, before the upstream", async () => {
      for (const value of ["!!!not base64***", "QUJDR"]) {
        const headers: Header[] = [["x-echo-a-bin", value]];
        assertConnectError(await post(`${svc}/Unary`, [...unary, ...headers], message("bin-unary")), 400, "invalid_argument", value);
        assertGrpcWebError(await post(`${svc}/Unary`, [...web, ...headers], envelope(0, message("bin-web"))), 3, value);
      }
      // Valid base64, padded or not, standard or URL-safe, passes.
      for (const value of ["QUJD", "QUI=", "QUI", "-_8"]) {
        const res = responseOf(await post(`${svc}/Unary`, [...unary, ["x-echo-a-bin", value]], message("bin-ok")), value);
        assert.equal(res.status, 200, value);
      }
    });
  });

  describe("timeouts", () => {
    // (Leading and trailing spaces are optional whitespace to HTTP: " 7" arrives as "7".)
    const badConnectTimeouts = ["abc", "1.5", "1e3", "12345678901", "-1", "+5", "1 2", "0x10"];

    it("an invalid Connect-Timeout-Ms is invalid_argument, unary (POST and GET) and streaming", async () => {
      for (const value of badConnectTimeouts) {
        const header: Header[] = [["connect-timeout-ms", value]];
        assertConnectError(await post(`${svc}/Unary`, [...unary, ...header], message("t")), 400, "invalid_argument", `POST ${value}`);
        assertConnectError(
          await exchange([rawRequest("GET", `${svc}/Unary?encoding=proto&message=`, header)]),
          400,
          "invalid_argument",
          `GET ${value}`,
        );
        assertEndStreamError(
          await post(`${svc}/ServerStream`, [...stream, ...header], envelope(0, echoRequest({ responseCount: 1 }))),
          "invalid_argument",
          `stream ${value}`,
        );
      }
    });

    it("an invalid grpc-timeout on gRPC-Web is INVALID_ARGUMENT", async () => {
      for (const value of ["1x", "123456789m", "-1m", "1.5S", "m"]) {
        assertGrpcWebError(await post(`${svc}/Unary`, [...web, ["grpc-timeout", value]], envelope(0, message("t"))), 3, value);
      }
    });

    it(
      "the largest Connect-Timeout-Ms (10 digits) does not expire at once",
      async () => {
        const res = responseOf(
          await post(`${svc}/Unary`, [...unary, ["connect-timeout-ms", "9999999999"]], echoRequest({ text: "long", delayMs: 20 })),
          "long deadline",
        );
        assert.equal(res.status, 200, res.body.toString());
      },
    );

    it(
      "a gRPC-Web grpc-timeout of 99999999H does not expire at once",
      async () => {
        const res = await post(`${svc}/Unary`, [...web, ["grpc-timeout", "99999999H"]], envelope(0, echoRequest({ text: "long", delayMs: 20 })));
        assert.equal(grpcWebStatus(res).status, "0");
      },
    );
  });

  describe("metadata", () => {
    for (const [index, [name, value]] of ([
      ["CR", "foo\rbar"],
      ["LF", "foo\nbar"],
      ["NUL", "foo\0bar"],
      ["control byte 0x01", "foo\x01bar"],
    ] as const).entries()) {
      it(`${name} in a header value is rejected by the HTTP parser (400, connection closed) and never reaches the upstream`, async () => {
        const method = `Control${index}`;
        const res = await rawExchange(servers.faultBridge.port, [rawRequest("POST", `/f.F/${method}`, [...unary, ["x-a", value]], message("x"))], closing);
        assertHttpRejection(res, 400, name);
        await afterEverythingForwarded(servers);
        assert.equal(servers.faults.requests.has(method), false, "the upstream was not called");
      });
    }

    it(
      "HTTP-level rejections (bad header bytes, too many header bytes, bad request-target) carry a Connect error body",
      async () => {
        const cases: [string, Buffer][] = [
          ["CR in a value", rawRequest("POST", `${svc}/Unary`, [...unary, ["x-a", "a\rb"]], message("x"))],
          ["16 KiB of headers", rawRequest("POST", `${svc}/Unary`, [...unary, ...Array.from({ length: 5000 }, (_, i): Header => [`x-h${i}`, "v"])], message("x"))],
          ["origin-form without /", rawRequest("POST", `bridge.test.v1.TestService/Unary`, unary, message("x"))],
        ];
        for (const [what, request] of cases) {
          const res = responseOf(await exchange([request]), what);
          const json = JSON.parse(res.body.toString("utf8"));
          assert.ok(connectCodes.has(json.code), `${what}: body ${res.body.toString()}`);
        }
      },
    );

    it(
      "a header value with bytes outside printable ASCII is not forwarded as gRPC metadata",
      async () => {
        const res = await rawExchange(servers.faultBridge.port, [
          rawRequest("POST", `/f.F/NonAscii`, [...unary, ["x-a", Buffer.from("caf\xe9 \u00ff", "latin1")]], message("x")),
        ]);
        const rejected = res.response?.status === 400;
        const forwarded = servers.faults.requests.get("NonAscii")?.["x-a"];
        assert.ok(
          rejected || forwarded === undefined || /^[\x20-\x7e]*$/.test(String(forwarded)),
          `either invalid_argument or no invalid metadata upstream; upstream got ${JSON.stringify(forwarded)}`,
        );
      },
    );

    it(
      "metadata named like Object.prototype members (constructor, __proto__) reaches the upstream unchanged",
      async () => {
        await rawExchange(servers.faultBridge.port, [rawRequest("POST", "/f.F/PrototypeNames", [...unary, ["constructor", "c"], ["__proto__", "p"]], message("x"))]);
        const seen = servers.faults.requests.get("PrototypeNames");
        assert.ok(seen !== undefined, "the upstream was called");
        assert.equal(seen["constructor"], "c");
        assert.equal(Object.hasOwn(seen, "__proto__") ? seen["__proto__" as string] : undefined, "p");
      },
    );

    it("a UTF-8 or Latin-1 metadata value is invalid_argument naming the header (gRPC metadata is printable ASCII)", async () => {
      for (const value of [Buffer.from("caf\xe9", "latin1"), Buffer.from("caf\u00e9 \u2603", "utf8")]) {
        const res = responseOf(await post(`${svc}/Unary`, [...unary, ["x-echo-a", value]], message("non-ascii")), "non-ascii");
        assert.equal(res.status, 400);
        assert.match(res.body.toString(), /x-echo-a/);
      }
    });

    it("thousands of headers: the upstream's refusal (ENHANCE_YOUR_CALM) is resource_exhausted in every protocol", async () => {
      const many: Header[] = Array.from({ length: 1500 }, (_, i) => [`x${i}`, ""]);
      const repeated: Header[] = Array.from({ length: 3000 }, () => ["x", ""]);
      for (const [what, headers] of [["1500 distinct", many], ["3000 repeated", repeated]] as const) {
        assertConnectError(await post(`${svc}/Unary`, [...unary, ...headers], message("h")), 429, "resource_exhausted", what);
        assertEndStreamError(
          await post(`${svc}/ServerStream`, [...stream, ...headers], envelope(0, echoRequest({ responseCount: 1 }))),
          "resource_exhausted",
          what,
        );
        assertGrpcWebError(await post(`${svc}/Unary`, [...web, ...headers], envelope(0, message("h"))), 8, what);
      }
    });

    it(
      "headers past the thousandth are not silently dropped",
      async () => {
        const headers: Header[] = [...Array.from({ length: 1200 }, (): Header => ["x-grpc-web", "1"]), ["content-type", "application/grpc-web+proto"]];
        const res = await post(`${svc}/Unary`, headers, envelope(0, message("late content-type")));
        const parsed = responseOf(res, "late content-type");
        // Honoured (a gRPC-Web answer) or refused as too many headers; never misread.
        assert.ok(parsed.status === 431 || /^application\/grpc-web/.test(parsed.headers["content-type"] ?? ""), `HTTP ${parsed.status} ${parsed.body.toString().slice(0, 120)}`);
      },
    );

    it("more than 16 KiB of headers is 431 from the HTTP parser and the connection is closed", async () => {
      const headers: Header[] = Array.from({ length: 5000 }, (_, i) => [`x-h${i}`, "v"]);
      assertHttpRejection(await exchange([rawRequest("POST", `${svc}/Unary`, [...unary, ...headers], message("x"))], closing), 431, "5000 headers");
    });
  });

  describe("protocol version, methods, paths", () => {
    it("an unknown Connect-Protocol-Version is invalid_argument (unary, streaming, GET)", async () => {
      for (const version of ["2", "0", "1.0", "v1", ""]) {
        const header: Header[] = [["connect-protocol-version", version]];
        assertConnectError(await post(`${svc}/Unary`, [...unary, ...header], message("v")), 400, "invalid_argument", `unary ${version}`);
        assertEndStreamError(await post(`${svc}/ServerStream`, [...stream, ...header], envelope(0, echoRequest({ responseCount: 1 }))), "invalid_argument", `stream ${version}`);
      }
      for (const version of ["v2", "1", ""]) {
        assertConnectError(await exchange([rawRequest("GET", `${svc}/Unary?encoding=proto&message=&connect=${version}`, [])]), 400, "invalid_argument", `GET connect=${version}`);
      }
    });

    it("PUT, DELETE, PATCH, OPTIONS are 405 with Allow and a Connect error; HEAD is 405 without a body", async () => {
      for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"]) {
        const res = await exchange([rawRequest(method, `${svc}/Unary`, unary, message("m"))]);
        assertConnectError(res, 405, "unknown", method);
        assert.equal(res.response!.headers.allow, "GET, POST", method);
      }
      // gRPC-Web content type, wrong method: a 405 in gRPC-Web's form (status in
      // the headers, no body), since gRPC-Web clients read no body on a non-200.
      const deleted = responseOf(await exchange([rawRequest("DELETE", `${svc}/Unary`, web, envelope(0, message("m")))]), "DELETE gRPC-Web");
      assert.equal(deleted.status, 405);
      assert.equal(deleted.headers.allow, "POST");
      assert.equal(deleted.headers["grpc-status"], "2");
      assert.equal(deleted.headers["content-type"], "application/grpc-web+proto");
      assert.equal(deleted.body.byteLength, 0);
      // No Content-Type at all: nothing says which protocol, so a bare 405.
      assertBareRefusal(await exchange([rawRequest("DELETE", `${svc}/Unary`, [], message("m"))]), 405, "allow", "DELETE, no content type");
      const head = await exchange([rawRequest("HEAD", `${svc}/Unary?encoding=proto&message=`, [])], { waitForClose: true });
      assert.match(head.bytes.toString("latin1"), /^HTTP\/1\.1 405 /);
      assert.ok(head.bytes.toString("latin1").endsWith("\r\n\r\n"), "no body after a HEAD answer");
    });

    it(
      "other methods Node accepts (TRACE, PROPFIND, SEARCH, MKCOL) are 405 too",
      async () => {
        for (const method of ["TRACE", "PROPFIND", "SEARCH", "MKCOL"]) {
          assertConnectError(await exchange([rawRequest(method, `${svc}/Unary`, unary, message("m"))]), 405, "unknown", method);
        }
      },
    );

    it("CONNECT and unknown method tokens are dropped by Node; the bridge lives on", async () => {
      const connect = await exchange([rawRequest("CONNECT", "127.0.0.1:80", [])]);
      assert.ok(connect.serverClosed, "CONNECT: connection closed");
      assertHttpRejection(await exchange([rawRequest("FOO", `${svc}/Unary`, unary, message("m"))], closing), 400, "FOO");
    });

    it("paths that are not /package.Service/Method are 404 unimplemented (Connect) / 12 (gRPC-Web)", async () => {
      const paths = [
        "/",
        "/../bridge.test.v1.TestService/Unary",
        "//bridge.test.v1.TestService/Unary",
        `${svc}/Unary/`,
        `${svc}/Unary/extra`,
        "/a.B/C%00",
        "/%F0%9F%92%A9.S/M",
        "/a.B/-",
        "/1a.B/C",
        `/a.B/${"C".repeat(8000)}`,
      ];
      for (const path of paths) {
        assertConnectError(await post(path, unary, message("p")), 404, "unimplemented", path.slice(0, 60));
        assertGrpcWebError(await post(path, web, envelope(0, message("p"))), 12, path.slice(0, 60));
        assertEndStreamOr404(await post(path, stream, envelope(0, message("p"))), path.slice(0, 60));
      }
    });

    it(
      "a percent-encoded slash does not reach another procedure: /pkg.Service%2FMethod is 404",
      async () => {
        assertConnectError(await post(`/bridge.test.v1.TestService%2FUnary`, unary, message("p")), 404, "unimplemented");
      },
    );

    it("an absolute-form request-target is served like its path (RFC 9112 §3.2.2)", async () => {
      const res = responseOf(await post(`http://other.example${svc}/Unary`, unary, message("abs")), "absolute-form");
      assert.equal(res.status, 200);
      assert.equal(decodeEchoResponse(res.body).text, "abs");
    });
  });

  describe("content types", () => {
    it(
      "a Content-Type that is not a media type at all is a bare 415 with Accept-Post, not Fastify's JSON",
      async () => {
        for (const contentType of ["", "x", "application", "a/b/c", "application/proto, application/json"]) {
          assertBareRefusal(await post(`${svc}/Unary`, [["content-type", contentType]], message("ct")), 415, "accept-post", JSON.stringify(contentType));
        }
      },
    );

    it("a missing Content-Type is a bare 415 with Accept-Post", async () => {
      assertBareRefusal(await post(`${svc}/Unary`, [], message("ct")), 415, "accept-post", "no content type");
    });
  });

  describe("bytes after the body", () => {
    it(
      "a request that does not parse, pipelined behind a streaming call, does not corrupt the response in flight",
      async () => {
        const body = envelope(0, echoRequest({ text: "pipelined", responseCount: 2, delayMs: 100 }));
        const res = await exchange(
          [
            Buffer.concat([requestHead("POST", `${svc}/ServerStream`, [...stream, ["content-length", String(body.byteLength)]]), body]),
            // The response head is out; the upstream sends the first message 100 ms after it.
            { received: (bytes) => bytes.includes("\r\n\r\n") },
            "garbage\r\n\r\n",
          ],
          { waitForClose: true, timeoutMs: 1500 },
        );
        const text = res.bytes.toString("latin1");
        assert.match(text, /^HTTP\/1\.1 200 /);
        const foreign = text.indexOf("HTTP/1.1 400", 1);
        if (foreign >= 0) {
          assert.ok(parseResponse(res.bytes.subarray(0, foreign)) !== undefined, `a 400 was written inside the streaming response: ${JSON.stringify(text.slice(0, 400))}`);
        }
      },
    );
  });

  describe("empty bodies", () => {
    it("unary POST and GET with an empty message succeed (an empty protobuf message is valid)", async () => {
      const res = responseOf(await post(`${svc}/Unary`, unary, Buffer.alloc(0)), "empty unary");
      assert.equal(res.status, 200);
      assert.equal(res.body.byteLength, 0);
      const get = responseOf(await exchange([rawRequest("GET", `${svc}/Unary?encoding=proto&message=`, [])]), "empty GET");
      assert.equal(get.status, 200);
    });

    it("client and bidi streams with no request message end cleanly", async () => {
      const client = connectEndStream(await post(`${svc}/ClientStream`, stream, Buffer.alloc(0)));
      assert.deepEqual(client.end, {});
      assert.equal(decodeEchoResponse(client.frames[0].data).index, 0);
      const bidi = connectEndStream(await post(`${svc}/BidiStream`, stream, Buffer.alloc(0)));
      assert.deepEqual(bidi.end, {});
      assert.equal(bidi.frames.length, 1);
    });

    it("a server stream or gRPC-Web unary with no request message gets the upstream's error, well-formed", async () => {
      // grpc-js answers trailers-only UNIMPLEMENTED "Received no request message";
      // the bridge cannot tell that from an unknown method, so Connect streaming
      // gets its 404 form (as for unknown procedures).
      const streamed = await post(`${svc}/ServerStream`, stream, Buffer.alloc(0));
      assert.match(assertEndStreamOr404(streamed, "server stream").message ?? "", /no request message/);
      assert.match(assertGrpcWebError(await post(`${svc}/Unary`, web, Buffer.alloc(0)), 12), /no request message/);
      assert.match(assertGrpcWebError(await post(`${svc}/ServerStream`, webText, Buffer.alloc(0)), 12), /no request message/);
    });
  });

  describe("bodies cut short", () => {
    it("unary: the client closes mid-body; nothing crashes and the upstream is never called", async () => {
      const closed = nextConnectionClosed(servers.faultBridge);
      await rawExchange(servers.faultBridge.port, [
        rawRequest("POST", "/f.F/CutUnary", unary, Buffer.from("abc"), { contentLength: 100 }),
        { flushed: true },
        { destroy: true },
      ]);
      await closed; // the bridge has seen the client leave
      await afterEverythingForwarded(servers);
      assert.equal(servers.faults.requests.has("CutUnary"), false);
    });

    it("unary: the client half-closes mid-body; Node answers 400 and the upstream is never called", async () => {
      const res = await rawExchange(servers.faultBridge.port, [
        rawRequest("POST", "/f.F/HalfClosedUnary", unary, Buffer.from("abc"), { contentLength: 100 }),
        { end: true },
      ], closing);
      assertHttpRejection(res, 400, "half-closed");
      assert.equal(servers.faults.requests.has("HalfClosedUnary"), false);
    });

    for (const [protocol, headers] of [["Connect", stream], ["gRPC-Web", web]] as const) {
      it(`${protocol} bidi: the client closes after one message and half of the next; the upstream call is cancelled`, async () => {
        const id = `cut-${protocol}`;
        const half = envelope(0, message("second")).subarray(0, 4);
        await exchange([
          requestHead("POST", `${svc}/BidiStream`, [...headers, ["transfer-encoding", "chunked"]]),
          chunk(envelope(0, message(id))),
          { received: (bytes) => bytes.includes(id) }, // the upstream echoed the first message
          chunk(half),
          { flushed: true },
          { destroy: true },
        ]);
        await withTimeout(servers.upstream.observations.cancelledCall(id), 2000, `${id} cancelled upstream`);
      });
    }

    it("Connect client stream with Content-Length: the client leaves mid-body; the upstream stream is reset with CANCEL", async () => {
      await rawExchange(servers.faultBridge.port, [
        requestHead("POST", "/f.F/Silent", [...stream, ["content-length", "1000"]]),
        envelope(0, Buffer.from("x")),
        { until: servers.faults.arrived("Silent") },
        { destroy: true },
      ]);
      assert.equal(await withTimeout(servers.faults.closed("Silent"), 2000, "upstream stream closed"), 8 /* CANCEL */);
    });
  });

  describe("a client that stalls mid-body (slowloris)", () => {
    it("unary without a deadline: unaryBodyTimeoutMs ends it with deadline_exceeded, the upstream is never called, others are served meanwhile", async () => {
      const strict = await startBridge(servers.faults.address, { unaryBodyTimeoutMs: 300 });
      try {
        const stalled = rawExchange(strict.port, [rawRequest("POST", "/f.F/StalledUnary", unary, Buffer.from("abc"), { contentLength: 100 })], {
          timeoutMs: 2000,
        });
        const other = responseOf(await post(`${svc}/Unary`, unary, message("meanwhile")), "meanwhile");
        assert.equal(other.status, 200);
        assertConnectError(await stalled, 504, "deadline_exceeded");
        assert.equal(servers.faults.requests.has("StalledUnary"), false);
      } finally {
        await strict.close();
      }
    });

    it(
      "unary with Connect-Timeout-Ms: the deadline covers reading the body",
      async () => {
        const res = await rawExchange(
          servers.faultBridge.port,
          [rawRequest("POST", "/f.F/StalledUnaryDeadline", [...unary, ["connect-timeout-ms", "300"]], Buffer.from("abc"), { contentLength: 100 })],
          { timeoutMs: 1500 },
        );
        assertConnectError(res, 504, "deadline_exceeded");
      },
    );

    it("Connect streaming with Connect-Timeout-Ms: a stalled body ends with deadline_exceeded in the end-stream", async () => {
      const res = await exchange(
        [requestHead("POST", `${svc}/BidiStream`, [...stream, ["connect-timeout-ms", "300"], ["content-length", "1000"]]), envelope(0, message("stall")), Buffer.from([0, 0])],
        { timeoutMs: 2000 },
      );
      const { frames } = connectEndStream(res);
      assert.equal(decodeEchoResponse(frames[0].data).text, "stall");
      assertEndStreamError(res, "deadline_exceeded");
    });

    it("gRPC-Web with grpc-timeout: a stalled body ends with DEADLINE_EXCEEDED", async () => {
      const res = await exchange(
        [requestHead("POST", `${svc}/BidiStream`, [...web, ["grpc-timeout", "300m"], ["content-length", "1000"]]), envelope(0, message("stall-web")), Buffer.from([0])],
        { timeoutMs: 2000 },
      );
      assertGrpcWebError(res, 4);
    });

    it("streaming without a deadline: the upstream call stays open while the client stalls, and is cancelled when it leaves", async () => {
      // Documents today's behaviour: the bridge has no idle timeout of its own
      // (README: "idle timeouts" not built yet), so a stalled stream holds an
      // upstream HTTP/2 stream until the client leaves or Node's requestTimeout.
      const id = "stall-no-deadline";
      let cancelledMeanwhile: boolean | undefined;
      const res = await exchange(
        [
          requestHead("POST", `${svc}/BidiStream`, [...stream, ["content-length", "1000"]]),
          envelope(0, message(id)),
          Buffer.from([0]),
          { received: (bytes) => bytes.includes(id) }, // echoed: the upstream call is open
          // Once the call is open upstream, a 600 ms deadline of the bridge's own passes.
          {
            until: () =>
              bridgeDeadlinePassed(servers.bridge.port, 600).then(() => (cancelledMeanwhile = servers.upstream.observations.wasCancelled(id))),
          },
          { destroy: true },
        ],
        { timeoutMs: 10_000, waitForClose: true },
      );
      assert.equal(cancelledMeanwhile, false, "still open after a 600 ms deadline of the bridge passed");
      assert.equal(res.serverClosed, false);
      await withTimeout(servers.upstream.observations.cancelledCall(id), 2000, "cancelled once the client left");
    });

    it("a client that stalls inside the request head gets nothing yet (Node's headersTimeout applies)", async () => {
      const res = await exchange(
        [
          "POST /a.B/C HTTP/1.1\r\nhost: x\r\n",
          { flushed: true },
          "x-a: 1\r\n",
          { flushed: true },
          { until: bridgeDeadlinePassed(servers.bridge.port, 700) },
          { destroy: true },
        ],
        { timeoutMs: 10_000 },
      );
      assert.ok(res.response === undefined && res.bytes.byteLength === 0 && !res.serverClosed, `answered or closed: ${res.bytes.toString("latin1").slice(0, 80)}`);
    });
  });

  describe("request smuggling shapes", () => {
    it("Content-Length with Transfer-Encoding, duplicate Content-Length and bad chunk sizes are 400 and close", async () => {
      const cases: [string, RawStep[]][] = [
        ["CL+TE", [requestHead("POST", `${svc}/Unary`, [...unary, ["transfer-encoding", "chunked"], ["content-length", "3"]]), chunk(message("x")), lastChunk]],
        ["CL twice", [requestHead("POST", `${svc}/Unary`, [...unary, ["content-length", "3"], ["content-length", "4"]]), "abcd"]],
        ["bad chunk", [requestHead("POST", `${svc}/Unary`, [...unary, ["transfer-encoding", "chunked"]]), "zz\r\nabc\r\n"]],
      ];
      for (const [what, steps] of cases) assertHttpRejection(await exchange(steps, closing), 400, what);
    });
  });

  it("keeps serving after all of the above", async () => {
    const res = responseOf(await post(`${svc}/Unary`, unary, message("still here")), "final unary");
    assert.equal(res.status, 200);
    assert.equal(decodeEchoResponse(res.body).text, "still here");
    const streamed = connectEndStream(await post(`${svc}/ServerStream`, stream, envelope(0, echoRequest({ text: "s", responseCount: 2 }))));
    assert.deepEqual(streamed.end, {});
    assert.equal(streamed.frames.length, 3);
    assert.equal(grpcWebStatus(await post(`${svc}/Unary`, web, envelope(0, message("w")))).status, "0");
  });
});

/**
 * A Connect streaming request for a procedure that does not exist: 404 with a
 * Connect error (as connect-go answers), or HTTP 200 with an end-stream error.
 */
function assertEndStreamOr404(outcome: RawOutcome, what: string): { code: string; message?: string } {
  const res = responseOf(outcome, what);
  if (res.status === 404) return assertConnectError(outcome, 404, "unimplemented", what);
  const { end } = connectEndStream(outcome, what);
  assert.equal(end.error?.code, "unimplemented", what);
  return end.error!;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
