/**
 * The bounded part of a drain: calls still open when `drainTimeoutMs` has
 * passed are ended with `unavailable` through their own CallHandle, so each
 * adapter writes a well-formed end of its protocol (a Connect end-stream
 * message, gRPC-Web trailers, gRPC trailers) instead of the connection
 * being cut. Clients retry `unavailable` elsewhere; a cut stream they might not.
 */
import { refusedCall, type CallEnd, type CallHandle, type CallLayer, type ResponseSink } from "./call.js";
import { Code, ConnectError } from "./protocol/status.js";

/** Where the drain says what it did: the bridge's logger. */
export type DrainLog = (fields: Record<string, unknown>, message: string) => void;

/** The status every call still open at the deadline ends with. */
export function shuttingDown(): ConnectError {
  return new ConnectError("bridge is shutting down", Code.Unavailable);
}

/** The handle of a call refused after the deadline: the body is read and dropped. */
const refusedHandle: CallHandle = {
  write: () => true,
  onDrain: () => {},
  end: () => {},
  cancel: () => {},
};

/**
 * The open calls of one bridge (every cluster's pipeline shares it), and the
 * deadline that ends them. One Set insertion and deletion per call: cheap
 * enough to stay in every pipeline, since every bridge can be closed.
 */
export class CallDrain {
  private readonly open = new Set<TrackedCall>();
  private expired = false;
  private timer: NodeJS.Timeout | undefined;
  private whenIdle: (() => void) | undefined;

  /** Calls in flight now. */
  get openCalls(): number {
    return this.open.size;
  }

  /** The outermost layer of a pipeline: records each call until its end. */
  readonly layer: CallLayer = (next) => (head, sink) => {
    if (this.expired) {
      // Past the deadline nothing new is started (a request that raced the GOAWAY).
      sink.onEnd(refusedCall(shuttingDown()));
      return refusedHandle;
    }
    const call = new TrackedCall(this, sink);
    this.open.add(call);
    try {
      call.handle = next(head, call);
    } catch (error) {
      // No call to end later: the drain must not wait for it.
      this.ended(call);
      throw error;
    }
    return call.handle;
  };

  /**
   * Lets open calls run for `timeoutMs`, then ends those left with
   * `unavailable`. Resolves once no call is open. Calling it again returns
   * the same drain.
   */
  drain(timeoutMs: number, log: DrainLog): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      this.whenIdle = resolve;
      if (this.open.size === 0) return resolve();
      log({ openCalls: this.open.size, drainTimeoutMs: timeoutMs }, `drain: waiting up to ${timeoutMs} ms for ${this.open.size} open call(s)`);
      this.timer = setTimeout(() => {
        this.expired = true;
        log({ openCalls: this.open.size, drainTimeoutMs: timeoutMs }, `drain timeout of ${timeoutMs} ms passed: ending ${this.open.size} open call(s) with unavailable`);
        const error = shuttingDown();
        // A copy: each cancel ends its call, which leaves the Set.
        for (const call of [...this.open]) call.handle?.cancel(error);
      }, timeoutMs);
    });
    return this.drained;
  }
  private drained: Promise<void> | undefined;

  /** A call ended: the drain is over when it was the last. */
  ended(call: TrackedCall): void {
    this.open.delete(call);
    if (this.whenIdle !== undefined && this.open.size === 0) {
      clearTimeout(this.timer);
      this.whenIdle();
    }
  }

  /** Past the drain (the bridge closed): no timer left behind. */
  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The sink the pipeline beneath writes to: passes everything on, notes the end. */
class TrackedCall implements ResponseSink {
  handle: CallHandle | undefined;

  constructor(
    private readonly drain: CallDrain,
    private readonly inner: ResponseSink,
  ) {}

  onHeaders(headers: Parameters<ResponseSink["onHeaders"]>[0], encoding: string | undefined): void {
    this.inner.onHeaders(headers, encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    return this.inner.onData(chunk, resume);
  }

  onEnd(end: CallEnd): void {
    this.drain.ended(this);
    this.inner.onEnd(end);
  }
}
