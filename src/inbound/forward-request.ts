/**
 * The request half of a streaming call: client frames to the upstream.
 */
import type { CallHead } from "../call.js";
import { FrameScanner, flagCompressed } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import type { GrpcCall } from "../upstream/grpc-call.js";
import type { BridgeContext, Exchange } from "./exchange.js";

/**
 * Pipes the client's request frames upstream, checking each frame header and
 * honouring backpressure. `decode` turns the body into frame bytes first
 * (gRPC-Web text mode); it returns undefined for input it cannot decode.
 */
export function forwardRequestFrames(
  ctx: BridgeContext,
  exchange: Exchange,
  head: CallHead,
  call: GrpcCall,
  decoder?: { push(chunk: Buffer): Buffer | undefined; readonly complete: boolean },
): void {
  const { req } = exchange;
  const max = ctx.options.maxRequestBytes;
  const scanner = new FrameScanner<ConnectError>((flags, length) => {
    if (flags === flagCompressed && head.requestEncoding === undefined) {
      // What Connect servers answer: the client broke its own negotiation.
      return new ConnectError("compressed request message without Connect-Content-Encoding", Code.Internal);
    }
    if (flags & ~flagCompressed) {
      return new ConnectError(`request message has invalid flags 0x${flags.toString(16)}`, Code.InvalidArgument);
    }
    if (length > max) {
      return new ConnectError(`request message of ${length} bytes exceeds the limit of ${max}`, Code.ResourceExhausted);
    }
    return undefined;
  });
  let failed = false;
  const fail = (error: ConnectError) => {
    failed = true;
    req.resume();
    call.cancel(error);
  };
  req.on("data", (raw: Buffer) => {
    if (failed) return;
    const chunk = decoder === undefined ? raw : decoder.push(raw);
    if (chunk === undefined) {
      fail(new ConnectError("request body is not valid base64", Code.InvalidArgument));
      return;
    }
    const problem = scanner.scan(chunk);
    if (problem !== undefined) {
      fail(problem);
      return;
    }
    if (!call.write(chunk)) {
      req.pause();
      call.onDrain(() => req.resume());
    }
  });
  req.on("end", () => {
    if (failed) return;
    if (!scanner.atBoundary || (decoder !== undefined && !decoder.complete)) {
      fail(new ConnectError("request body ended inside a message", Code.InvalidArgument));
      return;
    }
    call.end();
  });
}
