/**
 * Reads a unary request body straight into the gRPC frame that will carry it
 * upstream: five bytes reserved for the envelope header, then the message.
 * With a Content-Length the buffer is allocated once and each chunk copied
 * once; without one, chunks are joined at the end.
 */
import type { IncomingMessage } from "node:http";
import { envelopeHeaderLength } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import { stallWatchFor, type StallWatch, type Watched } from "./stall-watch.js";

/** Called exactly once: with the frame, or with the error that stopped the read. */
export type BodyDone = (error: ConnectError | undefined, frame?: Buffer) => void;

/** Where a request's listeners find their reader, without a closure per call. */
const readerOf = Symbol("bodyReader");
type ReadRequest = IncomingMessage & { [readerOf]: BodyReader };

/**
 * Starts reading. A callback, not a Promise: this is on every unary call's
 * path, and a promise costs an allocation and a microtask turn more.
 * `deadlineMs`: the call's deadline when it is shorter than `bodyTimeoutMs`
 * (a stalled body, slowloris or a deadline passing while receiving, must not
 * hold the request forever); the error for it is made only if it fires.
 */
export function readFramedBody(
  req: IncomingMessage,
  maxBytes: number,
  flags: number,
  bodyTimeoutMs: number,
  deadlineMs: number | undefined,
  done: BodyDone,
): void {
  const declared = req.headers["content-length"];
  let frame: Buffer | undefined;
  if (declared !== undefined) {
    const length = Number(declared);
    if (length > maxBytes) {
      req.resume(); // let the connection drain; the answer does not need the body
      done(tooLarge(length, maxBytes));
      return;
    }
    frame = Buffer.allocUnsafe(envelopeHeaderLength + length);
  }
  new BodyReader(req as ReadRequest, maxBytes, flags, bodyTimeoutMs, deadlineMs, frame, done);
}

function tooLarge(size: number, maxBytes: number): ConnectError {
  return new ConnectError(`request message of ${size} bytes exceeds the limit of ${maxBytes}`, Code.ResourceExhausted);
}

/**
 * One body being read: its state in fields, its listeners shared by every
 * call. A body timeout without a deadline is watched by the shared
 * StallWatch (no timer per call); a deadline keeps a precise timer.
 */
class BodyReader implements Watched {
  private size = 0;
  /** Chunks of a body without Content-Length, joined at the end. */
  private readonly chunks: Buffer[] | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly watch: StallWatch | undefined;
  stallPrev: Watched | undefined = undefined;
  stallNext: Watched | undefined = undefined;
  stallAt = 0;
  stallWatched = false;

  constructor(
    private readonly req: ReadRequest,
    private readonly maxBytes: number,
    private readonly flags: number,
    private readonly bodyTimeoutMs: number,
    private readonly deadlineMs: number | undefined,
    private frame: Buffer | undefined,
    private readonly done: BodyDone,
  ) {
    this.chunks = frame === undefined ? [] : undefined;
    req[readerOf] = this;
    if (deadlineMs !== undefined) {
      this.timer = setTimeout(BodyReader.onTimeout, deadlineMs, this);
      this.watch = undefined;
    } else {
      this.timer = undefined;
      this.watch = stallWatchFor(bodyTimeoutMs);
      this.watch.watch(this);
    }
    req.on("data", BodyReader.onData);
    req.on("end", BodyReader.onEnd);
    // 'close' before 'end' is a client gone mid-body, over either HTTP
    // version (HTTP/1.1 destroys the request on the socket's close; HTTP/2's
    // compat request closes with its stream). One listener instead of
    // 'aborted' and 'error': a listener pair fewer to add and remove on
    // every call, and neither request type emits 'error' unasked
    // (IncomingMessage only to listeners, the compat request never).
    req.on("close", BodyReader.onClosed);
  }

  private static onData(this: ReadRequest, chunk: Buffer): void {
    const reader = this[readerOf];
    const frame = reader.frame;
    if (frame !== undefined) {
      if (reader.size + chunk.byteLength > frame.byteLength - envelopeHeaderLength) {
        // Node's parser enforces Content-Length, so this is defensive only.
        reader.fail(new ConnectError("request body longer than its Content-Length", Code.InvalidArgument));
        return;
      }
      chunk.copy(frame, envelopeHeaderLength + reader.size);
    } else {
      reader.chunks!.push(chunk);
    }
    reader.size += chunk.byteLength;
    if (reader.size > reader.maxBytes) reader.fail(tooLarge(reader.size, reader.maxBytes));
  }

  private static onEnd(this: ReadRequest): void {
    const reader = this[readerOf];
    reader.cleanup();
    const size = reader.size;
    let frame = reader.frame;
    if (frame === undefined) {
      frame = Buffer.allocUnsafe(envelopeHeaderLength + size);
      let offset = envelopeHeaderLength;
      for (const chunk of reader.chunks!) offset += chunk.copy(frame, offset);
    } else if (size !== frame.byteLength - envelopeHeaderLength) {
      reader.done(new ConnectError("request body ended before its Content-Length", Code.InvalidArgument));
      return;
    }
    // An empty message is never compressed, whatever the header says.
    frame[0] = size === 0 ? 0 : reader.flags;
    frame.writeUInt32BE(size, 1);
    reader.done(undefined, frame);
  }

  /** Only ever before 'end': cleanup() takes this listener off when the body ends. */
  private static onClosed(this: ReadRequest): void {
    this[readerOf].fail(new ConnectError("client closed the request body", Code.Canceled));
  }

  private static onTimeout(reader: BodyReader): void {
    reader.onStalled();
  }

  /** The body did not arrive in time: from the deadline timer or the StallWatch. */
  onStalled(): void {
    this.fail(
      this.deadlineMs !== undefined
        ? new ConnectError(`deadline of ${this.deadlineMs} ms exceeded while receiving the request`, Code.DeadlineExceeded)
        : new ConnectError(`request body not received within ${this.bodyTimeoutMs} ms`, Code.DeadlineExceeded),
    );
  }

  private fail(error: ConnectError): void {
    this.cleanup();
    this.req.resume();
    this.done(error);
  }

  private cleanup(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    else this.watch!.unwatch(this);
    const req = this.req;
    req.off("data", BodyReader.onData);
    req.off("end", BodyReader.onEnd);
    req.off("close", BodyReader.onClosed);
  }
}
