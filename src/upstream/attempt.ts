/**
 * One attempt of an upstream gRPC call: one HTTP/2 stream. It forwards
 * request bytes, checks the response framing as it passes to the sink, and
 * records what the stream shows (headers, trailers, reset code, errors,
 * the connection's fate). It ends exactly once, telling its owner the
 * outcome and whether the call may be sent again (it provably never reached
 * the application and nothing of a response arrived).
 */
import * as http2 from "node:http2";
import type { IncomingHttpHeaders } from "node:http";
import type { CallEnd, ResponseSink } from "../call.js";
import type { UpstreamEndpoint, UpstreamStream } from "./upstream.js";
import { FrameScanner, flagCompressed } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import { neverReachedApplication } from "./retry-safety.js";
import {
  endedStreamStatus,
  isTrailersOnly,
  isUnknownProcedure,
  responseHeadersError,
  type EndedStream,
} from "./call-status.js";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export interface AttemptLimits {
  /** Largest response message accepted, in bytes (as sent, compressed or not). */
  maxResponseMessageBytes: number;
}

export interface AttemptOwner {
  /**
   * The attempt is over. `retryable`: the stream provably never reached the
   * application and no response arrived, so the call may be sent again.
   * Called exactly once per attempt.
   */
  attemptEnded(end: CallEnd, retryable: boolean): void;
}

/**
 * Where an attempt's stream listeners find their attempt, without a closure
 * per call; null once the attempt ended, so late events stop there. Nulled
 * because a closed ClientHttp2Stream stays reachable to scavenges until a
 * full GC (inside node:http2, for a reason not found: docs/architecture.md,
 * "Long-lived Sets"): through this slot the stream kept the whole call (the
 * sink, the client's request and response, their buffers) alive until
 * then. Nulled, callgrind counted about half the GC instructions per call.
 */
const attemptOf = Symbol("attempt");
type AttemptStream = http2.ClientHttp2Stream & { [attemptOf]: Attempt | null };

export class Attempt implements EndedStream {
  readonly upstreamName: string;
  readonly endpoint: UpstreamEndpoint;
  private readonly stream: AttemptStream;
  /** The connection the stream runs on (`stream.session` is gone once it closed). */
  private readonly session: http2.Http2Session | undefined;
  private readonly scanner: FrameScanner<ConnectError>;
  private encoding: string | undefined;
  private responseHeaders: IncomingHttpHeaders | undefined;
  trailers: IncomingHttpHeaders | undefined;
  trailersOnly = false;
  private httpStatus = 0;
  transportError: Error | undefined;
  /** Set when the bridge ended the attempt (cancel, deadline, a rejected response). */
  private failure: ConnectError | undefined;
  private ended = false;
  /** Whether the response bytes handed to the sink end on a frame boundary. */
  private forwardedAtBoundary = true;

  constructor(
    upstreamName: string,
    opened: UpstreamStream,
    private readonly codec: string,
    private readonly sink: ResponseSink,
    limits: AttemptLimits,
    private readonly owner: AttemptOwner,
  ) {
    this.upstreamName = upstreamName;
    this.endpoint = opened.endpoint;
    const stream = opened.stream as AttemptStream;
    this.stream = stream;
    this.session = stream.session;
    const max = limits.maxResponseMessageBytes;
    this.scanner = new FrameScanner<ConnectError>((flags, length) => {
      if (flags & ~flagCompressed) {
        return new ConnectError(`upstream sent a message with invalid flags 0x${flags.toString(16)}`, Code.Internal);
      }
      if (flags & flagCompressed && this.encoding === undefined) {
        return new ConnectError("upstream sent a compressed message without grpc-encoding", Code.Internal);
      }
      if (length > max) {
        return new ConnectError(`upstream response message of ${length} bytes exceeds the limit of ${max}`, Code.ResourceExhausted);
      }
      return undefined;
    });
    stream[attemptOf] = this;
    stream.on("response", Attempt.onResponse);
    stream.on("data", Attempt.onData);
    stream.on("trailers", Attempt.onTrailers);
    stream.on("end", Attempt.onEnd);
    stream.on("error", Attempt.onError);
    stream.on("close", Attempt.onClose);
  }

  get address(): string {
    return this.endpoint.address;
  }

  get insideMessage(): boolean {
    return !this.scanner.atBoundary;
  }

  get resetCode(): number | undefined {
    return this.stream.rstCode;
  }

  get connectionLost(): boolean {
    return this.session?.destroyed === true;
  }

  /** Forwards request bytes; false means wait for `onDrain`. */
  write(chunk: Uint8Array): boolean {
    if (this.ended || this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.stream.once("drain", listener);
  }

  /** Half-closes the request side. */
  end(chunk?: Uint8Array): void {
    if (this.ended || this.stream.destroyed) return;
    if (chunk !== undefined) this.stream.end(chunk);
    else this.stream.end();
  }

  /** Resets the stream with CANCEL and ends the attempt with `error`. */
  cancel(error: ConnectError): void {
    if (this.ended) return;
    this.failure ??= error;
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.finish(false);
  }

  /** Resumes a stream paused for backpressure; handed to the sink. */
  private readonly resume = (): void => {
    if (!this.ended) this.stream.resume();
  };

  private static onResponse(this: AttemptStream, headers: IncomingHttpHeaders, flags: number): void {
    const attempt = this[attemptOf];
    if (attempt === null) return;
    const status = Number(headers[":status"]);
    attempt.httpStatus = status;
    if (isTrailersOnly(headers, status, (flags & NGHTTP2_FLAG_END_STREAM) !== 0)) {
      attempt.trailersOnly = true;
      attempt.trailers = headers;
      return;
    }
    const problem = responseHeadersError(status, headers["content-type"], attempt.codec);
    if (problem !== undefined) {
      attempt.cancel(problem);
      return;
    }
    const grpcEncoding = headers["grpc-encoding"];
    attempt.encoding = grpcEncoding === undefined || grpcEncoding === "identity" ? undefined : String(grpcEncoding);
    attempt.responseHeaders = headers;
    attempt.sink.onHeaders(headers, attempt.encoding);
  }

  private static onData(this: AttemptStream, chunk: Buffer): void {
    const attempt = this[attemptOf];
    if (attempt === null) return;
    if (attempt.responseHeaders === undefined) {
      attempt.cancel(new ConnectError("upstream sent data in a trailers-only response", Code.Internal));
      return;
    }
    const scanner = attempt.scanner;
    const boundaryBefore = scanner.atBoundary;
    const problem = scanner.scan(chunk);
    if (problem !== undefined) {
      // The rejected chunk is not forwarded: what the client has ends where it began.
      attempt.forwardedAtBoundary = boundaryBefore;
      attempt.cancel(problem);
      return;
    }
    attempt.forwardedAtBoundary = scanner.atBoundary;
    if (!attempt.sink.onData(chunk, attempt.resume)) this.pause();
  }

  private static onTrailers(this: AttemptStream, trailers: IncomingHttpHeaders): void {
    const attempt = this[attemptOf];
    if (attempt !== null) attempt.trailers = trailers;
  }

  // 'end' comes after every data chunk was consumed ('trailers' may come
  // while a paused stream still holds data), so a call with a status ends
  // here. Without one, wait for 'close': only then is rstCode known.
  private static onEnd(this: AttemptStream): void {
    const attempt = this[attemptOf];
    if (attempt !== null && attempt.trailers?.["grpc-status"] !== undefined) attempt.finish(false);
  }

  private static onError(this: AttemptStream, error: Error): void {
    const attempt = this[attemptOf];
    if (attempt !== null) attempt.transportError = error;
  }

  private static onClose(this: AttemptStream): void {
    const attempt = this[attemptOf];
    if (attempt !== null) attempt.finish(attempt.neverAnswered() && neverReachedApplication(this, attempt.session));
  }

  /** Nothing of a response arrived, and the bridge did not end the attempt itself. */
  private neverAnswered(): boolean {
    return this.failure === undefined && this.responseHeaders === undefined && this.trailers === undefined;
  }

  private finish(retryable: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.stream[attemptOf] = null;
    const error = this.failure ?? endedStreamStatus(this);
    const messages = this.scanner.frames;
    this.owner.attemptEnded(
      {
        error,
        unknownProcedure: isUnknownProcedure(error, this.httpStatus, this.trailersOnly, messages),
        trailers: this.trailers,
        trailersOnly: this.trailersOnly,
        messages,
        midMessage: !this.forwardedAtBoundary,
        resetCode: this.peerResetCode(),
        endpoint: this.endpoint.address,
        attempts: 1,
        retries: undefined,
      },
      retryable,
    );
  }

  /** The code of a reset the upstream sent; a reset of ours (cancel) is not one. */
  private peerResetCode(): number | undefined {
    const code = this.stream.rstCode;
    if (this.failure !== undefined || code === undefined || code === NGHTTP2_NO_ERROR) return undefined;
    if (this.connectionLost) return undefined; // our own code for a lost connection
    return code;
  }
}
