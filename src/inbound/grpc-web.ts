/**
 * gRPC-Web, binary and text: the request frames are gRPC frames (base64 in
 * text mode), forwarded as they are; the response is headers, the upstream's
 * data frames, and a trailer frame (flag 0x80) carrying the status. When no
 * response headers came (trailers-only, or an error before the call), the
 * status travels in the HTTP headers and the body is empty.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { refusedCall, type CallEnd, type ResponseSink } from "../call.js";
import { Base64StreamDecoder } from "../protocol/base64-stream.js";
import { grpcWebContentTypeFor, type GrpcWebContentType } from "../protocol/content-type.js";
import { encodeTrailerFrame } from "../protocol/grpc-web-trailers.js";
import { responseMetadata } from "../protocol/metadata.js";
import { isErrorResult } from "../protocol/status.js";
import { grpcWebCallHead } from "./call-head.js";
import {
  disconnectWatchDone,
  exposeHeaders,
  responseClosed,
  writeChunk,
  type BridgeContext,
  type Exchange,
} from "./exchange.js";
import { startStreamingCall, writeStreamHead } from "./streaming-call.js";
import { grpcStatusBlock } from "./grpc-status.js";
import type { ClientProtocol } from "./client-protocol.js";

/** gRPC-Web, binary and text: refusals are trailers-only, the status in the headers. */
export const grpcWebProtocol: ClientProtocol = {
  name: "grpc-web",
  start: (ctx, exchange, request) => grpcWebCall(ctx, exchange, request),
  refuse: (exchange, request, end) => {
    exchange.req.resume();
    new GrpcWebResponder(exchange, request).onEnd(end);
  },
};

function grpcWebCall(ctx: BridgeContext, exchange: Exchange, type: GrpcWebContentType): void {
  const head = grpcWebCallHead(ctx, exchange, type.codec);
  if (isErrorResult(head)) {
    exchange.req.resume();
    new GrpcWebResponder(exchange, type).onEnd(refusedCall(head));
    return;
  }
  const responder = new GrpcWebResponder(exchange, type);
  startStreamingCall(ctx, exchange, head, responder, type.text ? new Base64StreamDecoder() : undefined);
}

class GrpcWebResponder implements ResponseSink {
  constructor(
    private readonly exchange: Exchange,
    private readonly type: GrpcWebContentType,
  ) {}

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    writeStreamHead(this.exchange, this.baseHeaders(), headers, "grpc-encoding", encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    // Text mode encodes each chunk on its own (padding included), so a
    // message is readable as soon as its bytes arrive; clients decode
    // concatenated padded segments.
    return writeChunk(this.exchange.res, this.type.text ? chunk.toString("base64") : chunk, resume);
  }

  onEnd(end: CallEnd): void {
    disconnectWatchDone(this.exchange);
    const { res } = this.exchange;
    if (responseClosed(res)) return;
    if (end.midMessage) {
      // A trailer frame after half a message would be read as part of it.
      res.destroy();
      return;
    }
    const status = grpcStatusBlock(end);
    if (!res.headersSent) {
      // Trailers-only: status and metadata in the headers, no body. A
      // refusal may ask for an HTTP status of its own (405 with Allow).
      const out = this.baseHeaders();
      if (end.trailers !== undefined) responseMetadata(end.trailers, out);
      Object.assign(out, status, end.http?.headers);
      out["content-length"] = 0;
      exposeHeaders(this.exchange, out);
      res.writeHead(end.http?.status ?? 200, out);
      res.end();
      return;
    }
    const block: OutgoingHttpHeaders = { ...status };
    if (end.trailers !== undefined) responseMetadata(end.trailers, block);
    const frame = encodeTrailerFrame(block);
    res.end(this.type.text ? frame.toString("base64") : frame);
  }

  private baseHeaders(): OutgoingHttpHeaders {
    return { ...this.exchange.baseHeaders, "content-type": grpcWebContentTypeFor(this.type) };
  }
}
