/**
 * Connect streaming calls (server, client and bidi): enveloped messages both
 * ways, passed through without copying — a Connect data frame and a gRPC data
 * frame are byte-for-byte the same — and an end-stream frame carrying the
 * status and trailers. Once streaming starts the HTTP status is always 200.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { refusedCall, type CallEnd, type ResponseSink } from "../call.js";
import { connectContentTypeFor } from "../protocol/content-type.js";
import { encodeEnvelope, flagEndStream } from "../protocol/envelope.js";
import { connectEndStreamJson } from "../protocol/error-json.js";
import { metadataToJsonRecord, responseMetadata } from "../protocol/metadata.js";
import { isErrorResult } from "../protocol/status.js";
import { connectCallHead, headerValue } from "./call-head.js";
import { startStreamingCall, writeStreamHead } from "./streaming-call.js";
import { writeConnectErrorEnd } from "./connect-error-response.js";
import type { ClientProtocol } from "./client-protocol.js";
import { disconnectWatchDone, responseClosed, writeChunk, type BridgeContext, type Exchange } from "./exchange.js";

/** Connect streaming: refusals before the stream are Connect error JSON with an HTTP status, as for unary calls. */
export const connectStreamProtocol: ClientProtocol = {
  name: "connect",
  start: (ctx, exchange, request) => connectStream(ctx, exchange, request.codec),
  refuse: (exchange, _request, end) => {
    exchange.req.resume();
    writeConnectErrorEnd(exchange, end);
  },
};

function connectStream(ctx: BridgeContext, exchange: Exchange, codec: string): void {
  const { req } = exchange;
  const head = connectCallHead(ctx, exchange, {
    codec,
    requestEncoding: headerValue(req.headers["connect-content-encoding"]),
    acceptEncoding: headerValue(req.headers["connect-accept-encoding"]),
    isGet: false,
    unary: false,
  });
  const responder = new StreamResponder(exchange, codec);
  if (isErrorResult(head)) {
    req.resume();
    responder.onEnd(refusedCall(head));
    return;
  }
  startStreamingCall(ctx, exchange, head, responder);
}

class StreamResponder implements ResponseSink {
  constructor(
    private readonly exchange: Exchange,
    private readonly codec: string,
  ) {}

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    writeStreamHead(this.exchange, this.baseHeaders(), headers, "connect-content-encoding", encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    return writeChunk(this.exchange.res, chunk, resume);
  }

  onEnd(end: CallEnd): void {
    disconnectWatchDone(this.exchange);
    const { res } = this.exchange;
    if (responseClosed(res)) return;
    if (end.midMessage) {
      // An end-stream frame appended to half a message would be read as part
      // of it; a cut connection is the only honest answer left.
      res.destroy();
      return;
    }
    if (!res.headersSent && (end.unknownProcedure || end.http !== undefined)) {
      // As a Connect server answers a path it has no route for, streaming or
      // not; and a refusal that asks for an HTTP status of its own.
      writeConnectErrorEnd(this.exchange, end, responseMetadata(end.trailers ?? {}, {}));
      return;
    }
    if (!res.headersSent) res.writeHead(200, this.baseHeaders());
    const payload = connectEndStreamJson(metadataToJsonRecord(end.trailers), end.error);
    res.end(encodeEnvelope(flagEndStream, payload));
  }

  private baseHeaders(): OutgoingHttpHeaders {
    return { ...this.exchange.baseHeaders, "content-type": connectContentTypeFor(true, this.codec) };
  }
}
