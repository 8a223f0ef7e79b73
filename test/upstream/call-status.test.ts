/**
 * The status of an ended upstream stream, one row per way a stream ends:
 * trailers, trailers-only, HTTP status, reset code, transport error,
 * connection lost. The function is pure, so the table is the whole story;
 * the integration tests (upstream-faults) pin that node:http2 reports
 * these facts as the rows assume.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { IncomingHttpHeaders } from "node:http";
import {
  endedStreamStatus,
  isTrailersOnly,
  isUnknownProcedure,
  responseHeadersError,
  unavailableError,
  type EndedStream,
} from "../../src/upstream/call-status.js";
import { Code, ConnectError } from "../../src/protocol/status.js";

const { NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR } =
  http2.constants;

const base: EndedStream = {
  upstreamName: "users",
  address: "10.0.0.7:50051",
  trailers: undefined,
  trailersOnly: false,
  insideMessage: false,
  resetCode: NGHTTP2_NO_ERROR,
  transportError: undefined,
  connectionLost: false,
};

function errnoError(message: string, code: string, cause?: Error): Error {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code });
}

const ok: IncomingHttpHeaders = { "grpc-status": "0" };
const rows: { what: string; facts: Partial<EndedStream>; code: Code | undefined; message?: RegExp }[] = [
  { what: "trailers with grpc-status 0", facts: { trailers: ok }, code: undefined },
  { what: "grpc-status 0 but the bytes stop inside a message", facts: { trailers: ok, insideMessage: true }, code: Code.Internal, message: /inside a message/ },
  {
    what: "trailers with an error status and a percent-encoded message",
    facts: { trailers: { "grpc-status": "7", "grpc-message": "no%20way" } },
    code: Code.PermissionDenied,
    message: /^no way$/,
  },
  {
    what: "trailers-only with an error status",
    facts: { trailers: { ":status": "200", "grpc-status": "12" }, trailersOnly: true },
    code: Code.Unimplemented,
  },
  {
    what: "a status wins over a reset that followed it",
    facts: { trailers: { "grpc-status": "5" }, resetCode: NGHTTP2_INTERNAL_ERROR },
    code: Code.NotFound,
  },
  {
    what: "trailers-only HTTP 503 without grpc-status",
    facts: { trailers: { ":status": "503" }, trailersOnly: true },
    code: Code.Unavailable,
    message: /HTTP 503 without a gRPC status/,
  },
  { what: "trailers-only HTTP 404 without grpc-status", facts: { trailers: { ":status": "404" }, trailersOnly: true }, code: Code.Unimplemented },
  { what: "trailers-only HTTP 401", facts: { trailers: { ":status": "401" }, trailersOnly: true }, code: Code.Unauthenticated },
  { what: "trailers-only HTTP 403", facts: { trailers: { ":status": "403" }, trailersOnly: true }, code: Code.PermissionDenied },
  { what: "trailers-only HTTP 429", facts: { trailers: { ":status": "429" }, trailersOnly: true }, code: Code.Unavailable },
  { what: "trailers-only HTTP 418", facts: { trailers: { ":status": "418" }, trailersOnly: true }, code: Code.Unknown },
  {
    what: "trailers-only HTTP 200 without grpc-status",
    facts: { trailers: { ":status": "200" }, trailersOnly: true },
    code: Code.Internal,
    message: /without grpc-status/,
  },
  { what: "reset REFUSED_STREAM", facts: { resetCode: NGHTTP2_REFUSED_STREAM }, code: Code.Unavailable, message: /REFUSED_STREAM/ },
  { what: "reset CANCEL", facts: { resetCode: NGHTTP2_CANCEL }, code: Code.Canceled },
  { what: "reset ENHANCE_YOUR_CALM", facts: { resetCode: NGHTTP2_ENHANCE_YOUR_CALM }, code: Code.ResourceExhausted },
  { what: "reset INTERNAL_ERROR", facts: { resetCode: NGHTTP2_INTERNAL_ERROR }, code: Code.Internal },
  { what: "reset PROTOCOL_ERROR", facts: { resetCode: NGHTTP2_PROTOCOL_ERROR }, code: Code.Internal },
  {
    what: "a clean end without any status (Node can report an early reset so)",
    facts: {},
    code: Code.Internal,
    message: /ended without grpc-status/,
  },
  { what: "response headers, then a clean end without trailers", facts: { trailers: undefined, resetCode: undefined }, code: Code.Internal },
  {
    what: "connection lost under the stream: Node's own CANCEL is not the upstream cancelling",
    facts: { connectionLost: true, resetCode: NGHTTP2_CANCEL },
    code: Code.Unavailable,
    message: /^upstream connection lost$/,
  },
  {
    what: "a transport error (connection refused before the stream went out), named with upstream and address",
    facts: {
      transportError: errnoError("pending stream has been canceled", "ERR_HTTP2_STREAM_CANCEL", new Error("connect ECONNREFUSED 10.0.0.7:50051")),
      resetCode: NGHTTP2_CANCEL,
      connectionLost: true,
    },
    code: Code.Unavailable,
    message: /^upstream "users" unavailable: 10\.0\.0\.7:50051: connect ECONNREFUSED 10\.0\.0\.7:50051$/,
  },
  {
    what: "a transport error of the connection (GOAWAY with an error)",
    facts: { transportError: errnoError("Session closed with error code 11", "ERR_HTTP2_SESSION_ERROR"), resetCode: NGHTTP2_ENHANCE_YOUR_CALM },
    code: Code.Unavailable,
    message: /^upstream "users" unavailable: 10\.0\.0\.7:50051: Session closed with error code 11$/,
  },
  {
    what: "a stream error is no transport error: its reset code decides",
    facts: { transportError: errnoError("Stream closed with error code NGHTTP2_ENHANCE_YOUR_CALM", "ERR_HTTP2_STREAM_ERROR"), resetCode: NGHTTP2_ENHANCE_YOUR_CALM },
    code: Code.ResourceExhausted,
  },
];

describe("endedStreamStatus", () => {
  for (const row of rows) {
    it(row.what, () => {
      const error = endedStreamStatus({ ...base, ...row.facts });
      assert.equal(error?.code, row.code, error?.message);
      if (row.message !== undefined) assert.match(error!.rawMessage, row.message);
    });
  }
});

describe("response headers", () => {
  const cases: { what: string; headers: IncomingHttpHeaders; endStream: boolean; trailersOnly: boolean; code?: Code }[] = [
    { what: "200 gRPC headers begin a response", headers: { ":status": "200", "content-type": "application/grpc" }, endStream: false, trailersOnly: false },
    { what: "a status in the only block is trailers-only", headers: { ":status": "200", "grpc-status": "3" }, endStream: false, trailersOnly: true },
    { what: "END_STREAM on the headers is trailers-only", headers: { ":status": "503" }, endStream: true, trailersOnly: true },
    { what: "HTTP 502 headers without grpc-status", headers: { ":status": "502", "content-type": "text/html" }, endStream: false, trailersOnly: false, code: Code.Unavailable },
    { what: "a non-gRPC content type", headers: { ":status": "200", "content-type": "text/html" }, endStream: false, trailersOnly: false, code: Code.Internal },
    { what: "gRPC in another codec", headers: { ":status": "200", "content-type": "application/grpc+json" }, endStream: false, trailersOnly: false, code: Code.Internal },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const status = Number(c.headers[":status"]);
      assert.equal(isTrailersOnly(c.headers, status, c.endStream), c.trailersOnly);
      if (!c.trailersOnly) assert.equal(responseHeadersError(status, c.headers["content-type"] as string | undefined, "proto")?.code, c.code);
    });
  }
});

describe("unknown procedure and unavailable", () => {
  const unimplemented = new ConnectError("x", Code.Unimplemented);
  it("HTTP 404 or a trailers-only unimplemented before any message; not an unimplemented after messages", () => {
    assert.equal(isUnknownProcedure(unimplemented, 404, false, 0), true);
    assert.equal(isUnknownProcedure(unimplemented, 200, true, 0), true);
    assert.equal(isUnknownProcedure(unimplemented, 200, false, 2), false);
    assert.equal(isUnknownProcedure(new ConnectError("x", Code.NotFound), 404, false, 0), false);
    assert.equal(isUnknownProcedure(undefined, 404, false, 0), false);
  });

  it("no endpoint at all: the upstream is named, no address", () => {
    const error = unavailableError("users", undefined, new Error('cluster "users" has no usable endpoint'));
    assert.equal(error.code, Code.Unavailable);
    assert.equal(error.rawMessage, 'upstream "users" unavailable: cluster "users" has no usable endpoint');
  });
});
