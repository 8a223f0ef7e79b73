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
 * deadline that ends them. One link and unlink per call: cheap enough to
 * stay in every pipeline, since every bridge can be closed.
 *
 * A list threaded through the calls, not a Set: a Set that lives long
 * (promoted to V8's old space) and sees one add and one delete per call
 * kept every call it ever held alive through young-generation GCs until
 * the next full GC. Each call's sink, attempt, request and response were
 * copied by every scavenge and then promoted: 5.2 KB promoted per 64 B
 * unary call, 2.6 KB with the list (`bench/gc-cost.mjs`). The likely
 * path: V8 links each hash table a Set outgrows or compacts to its
 * successor, so one dead old table reaches every later one and the entries
 * they held. `bench/set-churn.mjs` shows it alone: 16 live entries churned
 * through a Set that had aged into old space promoted 762 MB of 2.8 GB
 * allocated; through a fresh Set, or this list, 0.3 MB
 * (docs/architecture.md, "Long-lived Sets").
 */
export class CallDrain {
  /** Open calls, newest first; each unlinked call drops both its links. */
  private head: TrackedCall | undefined;
  private open = 0;
  private expired = false;
  private timer: NodeJS.Timeout | undefined;
  private whenIdle: (() => void) | undefined;

  /** Calls in flight now. */
  get openCalls(): number {
    return this.open;
  }

  /** The outermost layer of a pipeline: records each call until its end. */
  readonly layer: CallLayer = (next) => (head, sink) => {
    if (this.expired) {
      // Past the deadline nothing new is started (a request that raced the GOAWAY).
      sink.onEnd(refusedCall(shuttingDown()));
      return refusedHandle;
    }
    const call = new TrackedCall(this, sink);
    this.link(call);
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
      if (this.open === 0) return resolve();
      log({ openCalls: this.open, drainTimeoutMs: timeoutMs }, `drain: waiting up to ${timeoutMs} ms for ${this.open} open call(s)`);
      this.timer = setTimeout(() => {
        this.expired = true;
        log({ openCalls: this.open, drainTimeoutMs: timeoutMs }, `drain timeout of ${timeoutMs} ms passed: ending ${this.open} open call(s) with unavailable`);
        const error = shuttingDown();
        // A copy: each cancel ends its call, which unlinks it.
        const calls: TrackedCall[] = [];
        for (let call = this.head; call !== undefined; call = call.next) calls.push(call);
        for (const call of calls) call.handle?.cancel(error);
      }, timeoutMs);
    });
    return this.drained;
  }
  private drained: Promise<void> | undefined;

  /** A call ended: the drain is over when it was the last. */
  ended(call: TrackedCall): void {
    if (!call.linked) return;
    this.unlink(call);
    if (this.whenIdle !== undefined && this.open === 0) {
      clearTimeout(this.timer);
      this.whenIdle();
    }
  }

  private link(call: TrackedCall): void {
    call.linked = true;
    call.next = this.head;
    if (this.head !== undefined) this.head.prev = call;
    this.head = call;
    this.open++;
  }

  private unlink(call: TrackedCall): void {
    const { prev, next } = call;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    // A call that outlived a GC or two sits in the old space: links left on
    // it would keep its younger neighbours alive through scavenges, as the Set did.
    call.prev = call.next = undefined;
    call.linked = false;
    this.open--;
  }

  /** Past the drain (the bridge closed): no timer left behind. */
  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The sink the pipeline beneath writes to: passes everything on, notes the end. */
class TrackedCall implements ResponseSink {
  handle: CallHandle | undefined = undefined;
  /** The drain's list: the call opened after this one, and the one before. */
  prev: TrackedCall | undefined = undefined;
  next: TrackedCall | undefined = undefined;
  linked = false;

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
