/**
 * The bridge's own gRPC client, for the calls it makes itself (health
 * checks, server reflection): whole protobuf messages in and out over a
 * StartCall, so these calls take the same attempt layer as client calls —
 * the same status derivation, deadline, and response-size limit (a message
 * past it ends the call before it is buffered).
 */
import type { CallEnd, CallHandle, CallHead, ResponseSink, StartCall } from "../call.js";
import { encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import { Code, ConnectError } from "../protocol/status.js";

export interface OwnCallHandlers {
  /** One whole response message (without its 5-byte envelope header). */
  onMessage(message: Uint8Array): void;
  /** The call is over; exactly once. */
  onEnd(end: CallEnd): void;
}

/** One call of the bridge's own, binary protobuf, no compression. */
export class OwnCall implements ResponseSink {
  private readonly frames = new FrameAssembler();
  private readonly call: CallHandle;
  private ended = false;

  constructor(
    start: StartCall,
    path: string,
    timeoutMs: number,
    private readonly handlers: OwnCallHandlers,
  ) {
    const head: CallHead = { protocol: "grpc", unary: false, get: false, path, codec: "proto", metadata: {}, timeoutMs };
    this.call = start(head, this);
  }

  /** Sends one request message. */
  send(message: Uint8Array): void {
    if (!this.ended) this.call.write(encodeEnvelope(0, message));
  }

  /** Sends the last request message (if any) and half-closes the request. */
  close(message?: Uint8Array): void {
    if (!this.ended) this.call.end(message === undefined ? undefined : encodeEnvelope(0, message));
  }

  /** Ends the call now (the upstream stream is reset with CANCEL). */
  cancel(reason: string): void {
    if (!this.ended) this.call.cancel(new ConnectError(reason, Code.Canceled));
  }

  onHeaders(): void {}

  onData(chunk: Buffer): boolean {
    for (const frame of this.frames.push(chunk)) {
      if (this.ended) break;
      if (frame[0]! & flagCompressed) {
        // None was offered (no grpc-accept-encoding): a compressed answer is the server's mistake.
        this.call.cancel(new ConnectError("upstream sent a compressed message to the bridge's own call", Code.Internal));
        break;
      }
      this.handlers.onMessage(frame.subarray(envelopeHeaderLength));
    }
    return true;
  }

  onEnd(end: CallEnd): void {
    this.ended = true;
    this.handlers.onEnd(end);
  }
}

/** Why an own call failed: the call's end, and a message saying what the upstream said. */
export class OwnCallError extends Error {
  constructor(readonly end: CallEnd & { error: ConnectError }) {
    super(describeFailure(end.error, end));
  }

  get code(): Code {
    return this.end.error.code;
  }
}

/**
 * One unary call: resolves with the single response message, rejects with
 * an OwnCallError (any failure, or a success without exactly one message).
 */
export function ownUnary(start: StartCall, path: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let response: Uint8Array | undefined;
    let count = 0;
    const call = new OwnCall(start, path, timeoutMs, {
      onMessage: (message) => {
        response = message;
        count++;
      },
      onEnd: (end) => {
        if (end.error !== undefined) reject(new OwnCallError({ ...end, error: end.error }));
        else if (count !== 1) {
          const error = new ConnectError(`upstream answered a unary call with ${count} messages`, Code.Unimplemented);
          reject(new OwnCallError({ ...end, error }));
        } else resolve(response!);
      },
    });
    call.close(request);
  });
}

/** "grpc-status 12: message" when the status is the upstream's, else the bridge's own message. */
function describeFailure(error: ConnectError, end: CallEnd): string {
  const status = end.trailers?.["grpc-status"];
  if (status === undefined) return error.rawMessage;
  return `grpc-status ${String(status)}${error.rawMessage === "" ? "" : `: ${error.rawMessage}`}`;
}
