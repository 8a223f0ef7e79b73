/**
 * Native gRPC over HTTP/2, passed through: the same frames, metadata,
 * grpc-timeout and codings go upstream; headers, frames and trailers come
 * back as the upstream sent them; resets travel both ways. This is what lets
 * gRPC clients that have not migrated keep using the bridge's address.
 */
import * as http2 from "node:http2";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { refusedCall, type CallEnd, type ResponseSink } from "../call.js";
import { grpcContentTypeFor } from "../protocol/content-type.js";
import { responseMetadata } from "../protocol/metadata.js";
import { isErrorResult } from "../protocol/status.js";
import { grpcCallHead } from "./call-head.js";
import { responseClosed, writeChunk, type BridgeContext, type Exchange } from "./exchange.js";
import { grpcStatusBlock } from "./grpc-status.js";
import { startStreamingCall, writeStreamHead } from "./streaming-call.js";
import type { ClientProtocol } from "./client-protocol.js";

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** The raw HTTP/2 stream under a compat request: trailers need it. */
function streamOf(exchange: Exchange): http2.ServerHttp2Stream {
  return (exchange.req as unknown as http2.Http2ServerRequest).stream;
}

/** Native gRPC over HTTP/2: refusals are trailers-only, one header block that ends the stream. */
export const grpcProtocol: ClientProtocol = {
  name: "grpc",
  start: (ctx, exchange, request) => grpcCall(ctx, exchange, request.codec),
  refuse: (exchange, request, end) => {
    exchange.req.resume();
    new GrpcResponder(exchange, request.codec).onEnd(end);
  },
};

function grpcCall(ctx: BridgeContext, exchange: Exchange, codec: string): void {
  const responder = new GrpcResponder(exchange, codec);
  const head = grpcCallHead(ctx, exchange, codec);
  if (isErrorResult(head)) {
    exchange.req.resume();
    responder.onEnd(refusedCall(head));
    return;
  }
  startStreamingCall(ctx, exchange, head, responder);
}

/**
 * Writes through the compat response (which owns the stream's trailers)
 * except for trailers-only answers, which need the raw stream's
 * `respond(..., { endStream: true })`.
 */
class GrpcResponder implements ResponseSink {
  constructor(
    private readonly exchange: Exchange,
    private readonly codec: string,
  ) {}

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    const { res } = this.exchange;
    if (responseClosed(res)) return;
    // The same head as the other streaming protocols (host hooks' headers
    // included), plus what the upstream says it can decompress.
    const out: OutgoingHttpHeaders = {
      ...this.exchange.baseHeaders,
      "content-type": headers["content-type"] ?? grpcContentTypeFor(this.codec),
    };
    if (headers["grpc-accept-encoding"] !== undefined) out["grpc-accept-encoding"] = headers["grpc-accept-encoding"];
    writeStreamHead(this.exchange, out, headers, "grpc-encoding", encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    return writeChunk(this.exchange.res, chunk, resume);
  }

  onEnd(end: CallEnd): void {
    const { res } = this.exchange;
    const stream = streamOf(this.exchange);
    if (responseClosed(res) || stream.destroyed || stream.closed) return;
    if (end.resetCode !== undefined) {
      // The upstream reset its stream: reset ours with the same code.
      stream.close(end.resetCode);
      return;
    }
    if (end.midMessage) {
      stream.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const block: OutgoingHttpHeaders = grpcStatusBlock(end);
    if (end.trailers !== undefined) responseMetadata(end.trailers, block);
    if (!res.headersSent) {
      // Trailers-only: one header block that ends the stream. A refusal may
      // ask for an HTTP status of its own (405 with Allow, as grpc-go answers).
      stream.respond(
        { ...block, ...end.http?.headers, ":status": end.http?.status ?? 200, "content-type": grpcContentTypeFor(this.codec) },
        { endStream: true },
      );
      return;
    }
    res.addTrailers(block);
    res.end();
  }
}
