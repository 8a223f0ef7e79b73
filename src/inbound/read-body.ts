/**
 * Reads a unary request body straight into the gRPC frame that will carry it
 * upstream: five bytes reserved for the envelope header, then the message.
 * With a Content-Length the buffer is allocated once and each chunk copied
 * once; without one, chunks are joined at the end.
 */
import type { IncomingMessage } from "node:http";
import { envelopeHeaderLength } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";

/**
 * Calls `done` exactly once: with the frame, or with the error that stopped
 * the read. A callback, not a Promise: this is on every unary call's path,
 * and a promise costs an allocation and a microtask turn more.
 */
export function readFramedBody(
  req: IncomingMessage,
  maxBytes: number,
  flags: number,
  timeout: { ms: number; error: () => ConnectError },
  done: (error: ConnectError | undefined, frame?: Buffer) => void,
): void {
  const declared = req.headers["content-length"];
  const tooLarge = (size: number) =>
    new ConnectError(`request message of ${size} bytes exceeds the limit of ${maxBytes}`, Code.ResourceExhausted);
  let frame: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  if (declared !== undefined) {
    const length = Number(declared);
    if (length > maxBytes) {
      req.resume(); // let the connection drain; the answer does not need the body
      done(tooLarge(length));
      return;
    }
    frame = Buffer.allocUnsafe(envelopeHeaderLength + length);
  } else {
    chunks = [];
  }
  const onData = (chunk: Buffer) => {
    if (frame !== undefined) {
      if (size + chunk.byteLength > frame.byteLength - envelopeHeaderLength) {
        // Node's parser enforces Content-Length, so this is defensive only.
        fail(new ConnectError("request body longer than its Content-Length", Code.InvalidArgument));
        return;
      }
      chunk.copy(frame, envelopeHeaderLength + size);
    } else {
      chunks!.push(chunk);
    }
    size += chunk.byteLength;
    if (size > maxBytes) fail(tooLarge(size));
  };
  const onEnd = () => {
    cleanup();
    if (frame === undefined) {
      frame = Buffer.allocUnsafe(envelopeHeaderLength + size);
      let offset = envelopeHeaderLength;
      for (const chunk of chunks!) offset += chunk.copy(frame, offset);
    } else if (size !== frame.byteLength - envelopeHeaderLength) {
      done(new ConnectError("request body ended before its Content-Length", Code.InvalidArgument));
      return;
    }
    // An empty message is never compressed, whatever the header says.
    frame[0] = size === 0 ? 0 : flags;
    frame.writeUInt32BE(size, 1);
    done(undefined, frame);
  };
  const onAborted = () => fail(new ConnectError("client closed the request body", Code.Canceled));
  // A stalled body (slowloris, or a deadline that passes while receiving)
  // must not hold the request forever.
  const timer = setTimeout(() => fail(timeout.error()), timeout.ms);
  const fail = (error: ConnectError) => {
    cleanup();
    req.resume();
    done(error);
  };
  const cleanup = () => {
    clearTimeout(timer);
    req.off("data", onData);
    req.off("end", onEnd);
    req.off("error", onAborted);
    req.off("aborted", onAborted);
  };
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onAborted);
  req.on("aborted", onAborted);
}
