/**
 * An upstream call over its attempts: builds the gRPC request head once,
 * runs the first attempt, and sends the call again (elsewhere when there is
 * an elsewhere) while an attempt provably never reached the application,
 * the whole request is still held, and attempts and the retry budget allow.
 * It owns the call's deadline: one timer across attempts (none without a
 * deadline), and each retry's grpc-timeout carries what is left of it.
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { CallEnd, CallHandle, CallHead, CallRetry, ResponseSink } from "../call.js";
import { refusedCall } from "../call.js";
import type { CallTarget, UpstreamStream } from "./upstream.js";
import { Attempt, type AttemptLimits, type AttemptOwner } from "./attempt.js";
import { unavailableError } from "./call-status.js";
import { grpcContentTypeFor } from "../protocol/content-type.js";
import { Code, ConnectError } from "../protocol/status.js";
import { grpcTimeoutHeader } from "../protocol/timeout.js";

/** setTimeout fires at once past this (~24.8 days); longer deadlines are left to the upstream. */
const maxTimerMs = 2 ** 31 - 1;

export class RetryingCall implements CallHandle, AttemptOwner {
  /** The current attempt; undefined only when no stream could be opened at all. */
  private attempt: Attempt | undefined;
  /** Kept to send the call again. */
  private readonly headers: OutgoingHttpHeaders;
  private attempts = 1;
  /** Attempts that were sent again; allocated at the first retry only. */
  private retries: CallRetry[] | undefined;
  /** When the call's deadline passes (performance.now()), kept only where a retry may need it. */
  private deadlineAt: number | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** Retries taken from the upstream's budget, given back when the call ends. */
  private retriesHeld = 0;
  /** Request bytes went out with write(): they are not held, so no retry. */
  private bodyWritten = false;
  private requestEnded = false;
  /** The last request bytes, given to end(): held by reference for a retry (a unary call's whole frame). */
  private finalChunk: Uint8Array | undefined;
  private ended = false;

  constructor(
    private readonly target: CallTarget,
    private readonly head: CallHead,
    private readonly sink: ResponseSink,
    private readonly limits: AttemptLimits,
  ) {
    // The adapter's metadata object becomes the request head: no copy.
    const headers: OutgoingHttpHeaders = head.metadata;
    headers[":method"] = "POST";
    headers[":path"] = head.path;
    headers[":authority"] = target.authority;
    headers["content-type"] = grpcContentTypeFor(head.codec);
    headers.te = "trailers";
    const timeoutMs = head.timeoutMs;
    if (timeoutMs !== undefined) headers["grpc-timeout"] = grpcTimeoutHeader(timeoutMs);
    if (head.requestEncoding !== undefined) headers["grpc-encoding"] = head.requestEncoding;
    if (head.acceptEncoding !== undefined) headers["grpc-accept-encoding"] = head.acceptEncoding;
    this.headers = headers;

    let opened: UpstreamStream;
    try {
      opened = target.request(headers);
    } catch (error) {
      // No stream to hang the end on: report asynchronously, like every other end.
      queueMicrotask(() => this.finish(refusedCall(unavailableError(target.name, undefined, error))));
      return;
    }
    if (timeoutMs !== undefined) {
      if (target.retry !== undefined) this.deadlineAt = performance.now() + timeoutMs;
      if (timeoutMs <= maxTimerMs) this.deadline = setTimeout(deadlinePassed, timeoutMs, this);
    }
    this.attempt = new Attempt(target.name, opened, head.codec, sink, limits, this);
  }

  write(chunk: Uint8Array): boolean {
    if (this.ended || this.attempt === undefined) return true;
    this.bodyWritten = true;
    return this.attempt.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.attempt?.onDrain(listener);
  }

  end(chunk?: Uint8Array): void {
    if (this.ended || this.attempt === undefined) return;
    this.requestEnded = true;
    if (this.target.retry !== undefined) this.finalChunk = chunk;
    this.attempt.end(chunk);
  }

  cancel(error: ConnectError): void {
    if (this.ended) return;
    if (this.attempt !== undefined) this.attempt.cancel(error);
    else this.finish(refusedCall(error));
  }

  attemptEnded(end: CallEnd, retryable: boolean): void {
    if (this.ended) return;
    if (retryable && this.mayRetry()) {
      const next = this.nextAttempt();
      if (next !== undefined) {
        (this.retries ??= []).push({ atMs: Date.now(), endpoint: this.attempt!.endpoint.address, error: end.error });
        this.attempt = next;
        if (this.requestEnded) next.end(this.finalChunk);
        return;
      }
    }
    this.finish(end);
  }

  /** The whole request is still held, and attempts and the budget allow another. */
  private mayRetry(): boolean {
    const retry = this.target.retry;
    if (retry === undefined || this.bodyWritten || this.attempts >= retry.maxAttempts) return false;
    if (!retry.tryAcquire()) return false;
    this.retriesHeld++;
    return true;
  }

  /**
   * The next attempt, on another endpoint when there is one; undefined when
   * none can start (the call then ends as the failed attempt did).
   */
  private nextAttempt(): Attempt | undefined {
    this.attempts++;
    if (this.deadlineAt !== undefined) {
      // What is left of the deadline, not all of it again.
      this.headers["grpc-timeout"] = grpcTimeoutHeader(Math.max(1, Math.ceil(this.deadlineAt - performance.now())));
    }
    let opened: UpstreamStream;
    try {
      opened = this.target.retry!.requestAvoiding(this.headers, this.attempt!.endpoint);
    } catch {
      this.attempts--;
      return undefined;
    }
    return new Attempt(this.target.name, opened, this.head.codec, this.sink, this.limits, this);
  }

  /** The deadline passed: the attempt in flight is cancelled. */
  deadlinePassed(): void {
    this.deadline = undefined;
    this.cancel(new ConnectError(`deadline of ${this.head.timeoutMs} ms exceeded`, Code.DeadlineExceeded));
  }

  private finish(end: CallEnd): void {
    if (this.ended) return;
    this.ended = true;
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    for (; this.retriesHeld > 0; this.retriesHeld--) this.target.retry!.release();
    this.finalChunk = undefined;
    if (this.attempt !== undefined) {
      end.attempts = this.attempts;
      end.retries = this.retries;
    }
    this.sink.onEnd(end);
  }
}

/** The timer's callback: one function for every call, the call passed as its argument. */
function deadlinePassed(call: RetryingCall): void {
  call.deadlinePassed();
}
