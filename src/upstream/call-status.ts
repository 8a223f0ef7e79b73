/**
 * The status of an upstream gRPC call, from what its HTTP/2 stream showed:
 * pure functions of the facts an attempt collected, so every way a stream
 * can end is one row of a table (test/upstream/call-status.test.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import * as http2 from "node:http2";
import { checkGrpcResponseContentType } from "../protocol/content-type.js";
import { grpcStatusError } from "../protocol/error-json.js";
import { toHeaders } from "../protocol/metadata.js";
import { Code, ConnectError, codeFromResetCode, codeFromUpstreamHttpStatus, resetCodeName } from "../protocol/status.js";

const { NGHTTP2_NO_ERROR } = http2.constants;

/** What an ended stream showed, as an attempt records it. */
export interface EndedStream {
  /** Name of the upstream, for messages. */
  readonly upstreamName: string;
  /** The endpoint's address, for messages; undefined when none was reached. */
  readonly address: string | undefined;
  /** The trailers, or the only header block of a trailers-only response. */
  readonly trailers: IncomingHttpHeaders | undefined;
  /** The status arrived in the only header block. */
  readonly trailersOnly: boolean;
  /** The response bytes stop inside a message. */
  readonly insideMessage: boolean;
  /** The stream's `rstCode` as Node reports it (also for resets of its own). */
  readonly resetCode: number | undefined;
  /** The stream's 'error', if any. */
  readonly transportError: Error | undefined;
  /** The connection the stream ran on is gone (destroyed). */
  readonly connectionLost: boolean;
}

/**
 * The status of a stream that ended on its own (not cancelled by the
 * bridge): undefined for success, else the error the client gets.
 */
export function endedStreamStatus(ended: EndedStream): ConnectError | undefined {
  const trailers = ended.trailers;
  const status = trailers?.["grpc-status"];
  if (status === "0") {
    if (ended.insideMessage) return new ConnectError("upstream response ended inside a message", Code.Internal);
    return undefined;
  }
  if (status !== undefined) return grpcStatusError(toHeaders(trailers!));
  const transportError = ended.transportError as NodeJS.ErrnoException | undefined;
  if (transportError !== undefined && transportError.code !== "ERR_HTTP2_STREAM_ERROR") {
    // The connection failed (refused, reset, GOAWAY with an error): the
    // streams on it report a reset code that says nothing about the call.
    return unavailableError(ended.upstreamName, ended.address, transportError);
  }
  if (ended.connectionLost) {
    // The connection went down under the stream (killed, or GOAWAY with an
    // error): Node closes the stream with a CANCEL code of its own, which
    // must not read as the upstream cancelling.
    return new ConnectError("upstream connection lost", Code.Unavailable);
  }
  const resetCode = ended.resetCode;
  if (resetCode !== undefined && resetCode !== NGHTTP2_NO_ERROR) {
    return new ConnectError(`upstream reset the stream with ${resetCodeName(resetCode)}`, codeFromResetCode(resetCode));
  }
  if (trailers !== undefined && ended.trailersOnly) {
    const httpStatus = Number(trailers[":status"]);
    if (httpStatus !== 200) return httpStatusError(httpStatus);
  }
  // A stream that closes without grpc-status is never a success: Node can
  // surface an early reset as a clean end.
  return new ConnectError("upstream response ended without grpc-status", Code.Internal);
}

/**
 * What response headers that begin a response (not trailers-only) say
 * against it: an HTTP error without a gRPC status, or a content type that
 * is not gRPC in the call's codec. Undefined when the response may go on.
 */
export function responseHeadersError(httpStatus: number, contentType: string | undefined, codec: string): ConnectError | undefined {
  if (httpStatus !== 200) return httpStatusError(httpStatus);
  const problem = checkGrpcResponseContentType(contentType, codec);
  return problem === undefined ? undefined : new ConnectError(problem, Code.Internal);
}

/** Whether response headers carry the whole response (trailers-only). */
export function isTrailersOnly(headers: IncomingHttpHeaders, httpStatus: number, endStream: boolean): boolean {
  return endStream || (headers["grpc-status"] !== undefined && httpStatus === 200);
}

/**
 * The upstream does not know the procedure: HTTP 404, or `unimplemented`
 * before any message in a trailers-only response.
 */
export function isUnknownProcedure(error: ConnectError | undefined, httpStatus: number, trailersOnly: boolean, messages: number): boolean {
  return error?.code === Code.Unimplemented && (httpStatus === 404 || (trailersOnly && messages === 0));
}

/**
 * `unavailable` for a stream that could not run: no endpoint, or its
 * connection failed. Names the upstream and, when known, the address.
 */
export function unavailableError(upstreamName: string, address: string | undefined, error: unknown): ConnectError {
  // A stream still waiting for its connection fails with Node's "pending
  // stream has been canceled"; what matters is the cause (refused, TLS).
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  const reason = (error as { code?: string } | undefined)?.code === "ERR_HTTP2_STREAM_CANCEL" && cause instanceof Error ? cause : error;
  const message = reason instanceof Error ? reason.message : String(reason);
  return new ConnectError(
    `upstream "${upstreamName}" unavailable: ${address === undefined ? "" : `${address}: `}${message}`,
    Code.Unavailable,
  );
}

function httpStatusError(httpStatus: number): ConnectError {
  return new ConnectError(`upstream answered HTTP ${httpStatus} without a gRPC status`, codeFromUpstreamHttpStatus(httpStatus));
}
