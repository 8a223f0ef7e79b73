/**
 * One native gRPC call on the upstream HTTP/2 session: writes the request
 * head, forwards request bytes, checks the response framing, and turns
 * whatever ends the stream — trailers, a trailers-only response, a reset, a
 * dead connection, a deadline, a cancel — into exactly one CallEnd.
 */
import * as http2 from "node:http2";
type ClientHttp2Stream = http2.ClientHttp2Stream;
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { CallHead, ResponseSink } from "../call.js";
import type { Upstream } from "./upstream.js";
import { FrameScanner, flagCompressed } from "../protocol/envelope.js";
import { checkGrpcResponseContentType, grpcContentTypeFor } from "../protocol/content-type.js";
import { grpcStatusError } from "../protocol/error-json.js";
import { toHeaders } from "../protocol/metadata.js";
import {
  Code,
  ConnectError,
  codeFromResetCode,
  codeFromUpstreamHttpStatus,
  resetCodeName,
} from "../protocol/status.js";
import { grpcTimeoutHeader } from "../protocol/timeout.js";
import { neverReachedApplication } from "./retry-safety.js";
import { dialledAddress } from "./connection.js";

const { NGHTTP2_CANCEL } = http2.constants;
const maxTimerMs = 2 ** 31 - 1;

export interface GrpcCallLimits {
  /** Largest response message accepted, in bytes (as sent, compressed or not). */
  maxResponseMessageBytes: number;
}

export class GrpcCall {
  /** The session the stream runs on, to tell a lost connection from a reset. */
  private connection: http2.Http2Session | undefined;
  /** The current attempt's stream; undefined only when none could be opened at all. */
  private stream: ClientHttp2Stream | undefined;
  private readonly upstream: Upstream;
  /** Kept to send the call again when an attempt never reached the application. */
  private readonly headers: OutgoingHttpHeaders;
  private encoding: string | undefined;
  private attempts = 1;
  /** When the call's deadline passes (performance.now()), kept only for retries. */
  private deadlineAt: number | undefined;
  /** Retries taken from the upstream's budget, given back when the call ends. */
  private retriesHeld = 0;
  /** Request bytes went out with write(): they are not held, so no retry. */
  private bodyWritten = false;
  private requestEnded = false;
  /** The last request bytes, given to end(): held for a retry (a unary call's whole frame). */
  private finalChunk: Uint8Array | undefined;
  private readonly scanner: FrameScanner<ConnectError>;
  private responseHeaders: IncomingHttpHeaders | undefined;
  private trailers: IncomingHttpHeaders | undefined;
  private trailersOnly = false;
  private httpStatus = 0;
  private failure: ConnectError | undefined;
  private transportError: Error | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private ended = false;
  /** Whether the response bytes handed to the sink end on a frame boundary. */
  private forwardedAtBoundary = true;

  constructor(
    upstream: Upstream,
    head: CallHead,
    private readonly sink: ResponseSink,
    limits: GrpcCallLimits,
  ) {
    const headers: OutgoingHttpHeaders = head.metadata;
    headers[":method"] = "POST";
    headers[":path"] = head.path;
    headers[":authority"] = upstream.authority;
    headers["content-type"] = grpcContentTypeFor(head.codec);
    headers.te = "trailers";
    if (head.timeoutMs !== undefined) headers["grpc-timeout"] = grpcTimeoutHeader(head.timeoutMs);
    if (head.requestEncoding !== undefined) headers["grpc-encoding"] = head.requestEncoding;
    if (head.acceptEncoding !== undefined) headers["grpc-accept-encoding"] = head.acceptEncoding;

    this.scanner = new FrameScanner<ConnectError>((flags, length) => {
      if (flags & ~flagCompressed) {
        return new ConnectError(`upstream sent a message with invalid flags 0x${flags.toString(16)}`, Code.Internal);
      }
      if (flags & flagCompressed && this.encoding === undefined) {
        return new ConnectError("upstream sent a compressed message without grpc-encoding", Code.Internal);
      }
      if (length > limits.maxResponseMessageBytes) {
        return new ConnectError(
          `upstream response message of ${length} bytes exceeds the limit of ${limits.maxResponseMessageBytes}`,
          Code.ResourceExhausted,
        );
      }
      return undefined;
    });

    this.upstream = upstream;
    this.headers = headers;
    let stream: ClientHttp2Stream;
    try {
      stream = upstream.request(headers);
    } catch (error) {
      // No stream to hang the end on: report asynchronously, like every other end.
      this.stream = undefined;
      this.connection = undefined;
      queueMicrotask(() => this.finishWith(this.unavailable(error)));
      return;
    }
    this.stream = stream;
    this.connection = stream.session;

    // setTimeout fires at once past 2^31-1 ms (~24.8 days); such a deadline
    // is left to the upstream (grpc-timeout still carries it).
    if (head.timeoutMs !== undefined && upstream.retry !== undefined) {
      // Only where a retry may need the time left.
      this.deadlineAt = performance.now() + head.timeoutMs;
    }
    if (head.timeoutMs !== undefined && head.timeoutMs <= maxTimerMs) {
      this.deadline = setTimeout(() => {
        this.cancel(new ConnectError(`deadline of ${head.timeoutMs} ms exceeded`, Code.DeadlineExceeded));
      }, head.timeoutMs);
    }
    this.attach(stream, head, sink);
  }

  /** Follows one attempt's stream; only the current attempt's events count. */
  private attach(stream: ClientHttp2Stream, head: CallHead, sink: ResponseSink): void {
    stream.on("response", (responseHeaders, flags) => {
      if (stream !== this.stream) return;
      const status = Number(responseHeaders[":status"]);
      this.httpStatus = status;
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (endStream || (responseHeaders["grpc-status"] !== undefined && status === 200)) {
        // Trailers-only: the status travels in the only header block.
        this.trailersOnly = true;
        this.trailers = responseHeaders;
        return;
      }
      if (status !== 200) {
        this.fail(
          new ConnectError(
            `upstream answered HTTP ${status} without a gRPC status`,
            codeFromUpstreamHttpStatus(status),
          ),
        );
        return;
      }
      const problem = checkGrpcResponseContentType(responseHeaders["content-type"], head.codec);
      if (problem !== undefined) {
        this.fail(new ConnectError(problem, Code.Internal));
        return;
      }
      const grpcEncoding = responseHeaders["grpc-encoding"];
      this.encoding = grpcEncoding === undefined || grpcEncoding === "identity" ? undefined : String(grpcEncoding);
      this.responseHeaders = responseHeaders;
      sink.onHeaders(responseHeaders, this.encoding);
    });
    stream.on("data", (chunk: Buffer) => {
      if (this.failure !== undefined || this.ended) return;
      if (this.responseHeaders === undefined) {
        this.fail(new ConnectError("upstream sent data in a trailers-only response", Code.Internal));
        return;
      }
      const boundaryBefore = this.scanner.atBoundary;
      const problem = this.scanner.scan(chunk);
      if (problem !== undefined) {
        // The rejected chunk is not forwarded: what the client has ends where it began.
        this.forwardedAtBoundary = boundaryBefore;
        this.fail(problem);
        return;
      }
      this.forwardedAtBoundary = this.scanner.atBoundary;
      if (!sink.onData(chunk, this.resumeStream)) stream.pause();
    });
    stream.on("trailers", (trailers) => {
      if (stream !== this.stream) return;
      this.trailers = trailers;
    });
    // 'end' comes after every data chunk was consumed ('trailers' may come
    // while a paused stream still holds data), so a call with a status ends
    // here. Without one, wait for 'close': only then is rstCode known.
    stream.on("end", () => {
      if (stream !== this.stream) return;
      if (this.trailers?.["grpc-status"] !== undefined) this.finish();
    });
    stream.on("error", (error) => {
      if (stream !== this.stream) return;
      this.transportError = error;
    });
    stream.on("close", () => {
      if (stream !== this.stream || this.ended) return;
      if (this.mayRetry(stream)) this.retryElsewhere(head, sink);
      else this.finish();
    });
  }

  /**
   * Whether the stream that just closed may be sent again: it provably never
   * reached the application (retry-safety.ts), nothing of a response
   * arrived, the whole request is still held (a unary frame, or a stream
   * nothing was written to yet), and attempts and the budget allow.
   */
  private mayRetry(stream: ClientHttp2Stream): boolean {
    const retry = this.upstream.retry;
    if (retry === undefined || this.failure !== undefined || this.bodyWritten) return false;
    if (this.responseHeaders !== undefined || this.trailers !== undefined || this.scanner.frames > 0) return false;
    if (this.attempts >= retry.maxAttempts || !neverReachedApplication(stream, this.connection)) return false;
    if (!retry.tryAcquire()) return false;
    this.retriesHeld++;
    return true;
  }

  private retryElsewhere(head: CallHead, sink: ResponseSink): void {
    this.attempts++;
    if (this.deadlineAt !== undefined) {
      // The next attempt gets what is left of the deadline, not all of it again.
      this.headers["grpc-timeout"] = grpcTimeoutHeader(Math.max(1, Math.ceil(this.deadlineAt - performance.now())));
    }
    let stream: ClientHttp2Stream;
    try {
      stream = this.upstream.retry!.requestAvoiding(this.headers, this.connection);
    } catch (error) {
      this.finishWith(this.unavailable(error));
      return;
    }
    this.transportError = undefined;
    this.stream = stream;
    this.connection = stream.session;
    this.attach(stream, head, sink);
    if (this.requestEnded) {
      if (this.finalChunk !== undefined) stream.end(this.finalChunk);
      else stream.end();
    }
  }

  /** Forwards request bytes; false means wait for onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.ended || this.stream === undefined || this.stream.destroyed) return true;
    this.bodyWritten = true;
    return this.stream.write(chunk);
  }

  /** Runs once the upstream can take more request bytes. */
  onDrain(listener: () => void): void {
    this.stream?.once("drain", listener);
  }

  /** Half-closes the request side. */
  end(chunk?: Uint8Array): void {
    if (this.ended || this.stream === undefined || this.stream.destroyed) return;
    this.requestEnded = true;
    if (this.upstream.retry !== undefined) this.finalChunk = chunk;
    if (chunk !== undefined) this.stream.end(chunk);
    else this.stream.end();
  }

  /** Resumes a stream paused for backpressure; handed to the sink. */
  private readonly resumeStream = (): void => {
    if (!this.ended) this.stream?.resume();
  };

  /** Resets the upstream stream with CANCEL and ends the call with `error`. */
  cancel(error: ConnectError): void {
    if (this.ended) return;
    this.failure ??= error;
    if (this.stream !== undefined && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.finish();
  }

  private fail(error: ConnectError): void {
    this.cancel(error);
  }

  private finish(): void {
    if (this.ended) return;
    this.finishWith(this.failure ?? this.outcome());
  }

  private finishWith(error: ConnectError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    for (; this.retriesHeld > 0; this.retriesHeld--) this.upstream.retry?.release();
    this.finalChunk = undefined;
    this.sink.onEnd({
      error,
      unknownProcedure:
        error?.code === Code.Unimplemented &&
        (this.httpStatus === 404 || (this.trailersOnly && this.scanner.frames === 0)),
      trailers: this.trailers,
      trailersOnly: this.trailersOnly,
      messages: this.scanner.frames,
      midMessage: !this.forwardedAtBoundary,
      resetCode: this.peerResetCode(),
    });
  }

  /** The code of a reset the upstream sent; a reset of ours (cancel) is not one. */
  private peerResetCode(): number | undefined {
    const code = this.stream?.rstCode;
    if (this.failure !== undefined || code === undefined || code === http2.constants.NGHTTP2_NO_ERROR) return undefined;
    if (this.connection?.destroyed) return undefined; // our own code for a lost connection
    return code;
  }

  private unavailable(error: unknown): ConnectError {
    // A stream still waiting for its connection fails with Node's "pending
    // stream has been canceled"; what matters is the cause (refused, TLS).
    const cause = (error as { code?: string; cause?: unknown }).cause;
    const reason = (error as { code?: string }).code === "ERR_HTTP2_STREAM_CANCEL" && cause instanceof Error ? cause : error;
    const message = reason instanceof Error ? reason.message : String(reason);
    const address = this.connection === undefined ? undefined : dialledAddress.get(this.connection);
    return new ConnectError(
      `upstream "${this.upstream.name}" unavailable: ${address === undefined ? "" : `${address}: `}${message}`,
      Code.Unavailable,
    );
  }

  /** The status of a stream that ended on its own. */
  private outcome(): ConnectError | undefined {
    const trailers = this.trailers;
    const status = trailers?.["grpc-status"];
    if (status === "0") {
      if (!this.scanner.atBoundary) {
        return new ConnectError("upstream response ended inside a message", Code.Internal);
      }
      return undefined;
    }
    if (status !== undefined) {
      return grpcStatusError(toHeaders(trailers!));
    }
    const transportError = this.transportError as NodeJS.ErrnoException | undefined;
    if (transportError !== undefined && transportError.code !== "ERR_HTTP2_STREAM_ERROR") {
      // The connection failed (refused, reset, GOAWAY with an error): the
      // streams on it report a reset code that says nothing about the call.
      return this.unavailable(transportError);
    }
    if (this.connection?.destroyed) {
      // The connection went down under the stream (killed, or GOAWAY with
      // an error): Node closes the stream with a CANCEL code of its own,
      // which must not read as the upstream cancelling.
      return new ConnectError("upstream connection lost", Code.Unavailable);
    }
    const rstCode = this.stream?.rstCode;
    if (rstCode !== undefined && rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
      return new ConnectError(
        `upstream reset the stream with ${resetCodeName(rstCode)}`,
        codeFromResetCode(rstCode),
      );
    }
    if (trailers !== undefined && this.trailersOnly) {
      const httpStatus = Number(trailers[":status"]);
      if (httpStatus !== 200) {
        return new ConnectError(
          `upstream answered HTTP ${httpStatus} without a gRPC status`,
          codeFromUpstreamHttpStatus(httpStatus),
        );
      }
    }
    // A stream that closes without grpc-status is never a success: Node can
    // surface an early reset as a clean end.
    return new ConnectError("upstream response ended without grpc-status", Code.Internal);
  }
}


