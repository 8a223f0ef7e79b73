/**
 * What streaming adapters (Connect streaming, gRPC-Web) share: starting the
 * call, piping the client's frames upstream, and writing response headers.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { CallHead, ResponseSink } from "../call.js";
import { responseMetadata } from "../protocol/metadata.js";
import { FrameScanner, flagCompressed } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import { GrpcCall } from "../upstream/grpc-call.js";
import { cancelOnDisconnect, exposeHeaders, type BridgeContext, type Exchange } from "./exchange.js";

type Decoder = { push(chunk: Buffer): Buffer | undefined; readonly complete: boolean };

/** Starts the upstream call and streams the request body into it. */
export function startStreamingCall(
  ctx: BridgeContext,
  exchange: Exchange,
  head: CallHead,
  responder: ResponseSink,
  decoder?: Decoder,
): void {
  const call = new GrpcCall(ctx.session, head, responder, { maxResponseMessageBytes: ctx.options.maxResponseBytes });
  cancelOnDisconnect(exchange, call);
  forwardRequestFrames(ctx, exchange, head, call, decoder);
}

/**
 * Writes the response head of a streaming call right away: base headers,
 * the upstream's metadata, the name of the response coding under
 * `encodingHeader`. Streaming clients may wait for headers before sending more.
 */
export function writeStreamHead(
  exchange: Exchange,
  out: OutgoingHttpHeaders,
  upstreamHeaders: IncomingHttpHeaders,
  encodingHeader: string,
  encoding: string | undefined,
): void {
  responseMetadata(upstreamHeaders, out);
  if (encoding !== undefined) out[encodingHeader] = encoding;
  exposeHeaders(exchange, out);
  exchange.res.writeHead(200, out);
  exchange.res.flushHeaders();
}

/**
 * Pipes the client's request frames upstream, checking each frame header and
 * honouring backpressure. `decode` turns the body into frame bytes first
 * (gRPC-Web text mode); it returns undefined for input it cannot decode.
 */
function forwardRequestFrames(
  ctx: BridgeContext,
  exchange: Exchange,
  head: CallHead,
  call: GrpcCall,
  decoder: Decoder | undefined,
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
