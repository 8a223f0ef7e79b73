/**
 * Connect unary calls, POST and GET: one bare message in, one bare message
 * (or a JSON error) out, trailers as `trailer-` headers.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { CallEnd, CallHead, ResponseSink } from "../call.js";
import { connectContentTypeFor } from "../protocol/content-type.js";
import { encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { parseConnectGetQuery } from "../protocol/get-request.js";
import { responseMetadata } from "../protocol/metadata.js";
import { compress, decompress, pickResponseCoding } from "../protocol/compression.js";
import { Code, ConnectError, isErrorResult } from "../protocol/status.js";
import { connectCallHead } from "./call-head.js";
import { writeConnectError, writeConnectErrorEnd } from "./connect-error-response.js";
import { cancelOnDisconnect, disconnectWatchDone, exposeHeaders, responseClosed, type AdapterOptions, type BridgeContext, type Exchange } from "./exchange.js";
import { readFramedBody } from "./read-body.js";
import type { ClientProtocol } from "./client-protocol.js";

/** Connect unary, POST and GET: refusals are Connect error JSON with an HTTP status. */
export const connectUnaryProtocol: ClientProtocol = {
  name: "connect",
  start: (ctx, exchange, request, rawQuery) => {
    if (exchange.req.method === "GET") connectUnaryGet(ctx, exchange, rawQuery);
    else connectUnaryPost(ctx, exchange, request.codec);
  },
  refuse: (exchange, _request, end) => {
    exchange.req.resume();
    writeConnectErrorEnd(exchange, end);
  },
};

/** A unary POST with `Content-Type: application/<codec>`. */
function connectUnaryPost(ctx: BridgeContext, exchange: Exchange, codec: string): void {
  const { req } = exchange;
  const head = connectCallHead(ctx, exchange, {
    codec,
    requestEncoding: req.headers["content-encoding"],
    acceptEncoding: req.headers["accept-encoding"],
    isGet: false,
    unary: true,
  });
  if (isErrorResult(head)) {
    req.resume();
    writeConnectError(exchange, head);
    return;
  }
  // The deadline counts from the request's arrival, body included.
  const started = Date.now();
  const bodyTimeout = ctx.options.unaryBodyTimeoutMs;
  const deadlineMs = head.timeoutMs;
  const flags = head.requestEncoding ? flagCompressed : 0;
  const shorterDeadline = deadlineMs !== undefined && deadlineMs <= bodyTimeout ? deadlineMs : undefined;
  readFramedBody(req, ctx.options.maxRequestBytes, flags, bodyTimeout, shorterDeadline, (error, frame) => {
    if (error !== undefined) {
      writeConnectError(exchange, error);
      return;
    }
    if (head.timeoutMs !== undefined) head.timeoutMs = Math.max(0, head.timeoutMs - (Date.now() - started));
    startUnary(ctx, exchange, head, frame!);
  });
}

/** A unary GET: the message and its encoding travel in the query. */
function connectUnaryGet(ctx: BridgeContext, exchange: Exchange, rawQuery: string): void {
  const query = parseConnectGetQuery(rawQuery);
  if ("error" in query) {
    writeConnectError(exchange, query.error, undefined, query.unsupportedMediaType ? 415 : undefined);
    return;
  }
  if (!ctx.options.codecs.includes(query.codec)) {
    writeConnectError(
      exchange,
      new ConnectError(`unsupported encoding "${query.codec}": expected one of ${ctx.options.codecs.join(", ")}`, Code.Unknown),
      undefined,
      415,
    );
    return;
  }
  if (ctx.options.requireConnectProtocolHeader && !/(^|&)connect=v1(&|$)/.test(rawQuery)) {
    writeConnectError(exchange, new ConnectError('missing required query parameter: set connect to "v1"', Code.InvalidArgument));
    return;
  }
  const head = connectCallHead(ctx, exchange, {
    codec: query.codec,
    requestEncoding: query.compression,
    acceptEncoding: exchange.req.headers["accept-encoding"],
    isGet: true,
    unary: true,
  });
  if (isErrorResult(head)) {
    writeConnectError(exchange, head);
    return;
  }
  if (query.message.byteLength > ctx.options.maxRequestBytes) {
    writeConnectError(
      exchange,
      new ConnectError(
        `request message of ${query.message.byteLength} bytes exceeds the limit of ${ctx.options.maxRequestBytes}`,
        Code.ResourceExhausted,
      ),
    );
    return;
  }
  const compressed = head.requestEncoding !== undefined && query.message.byteLength > 0;
  startUnary(ctx, exchange, head, encodeEnvelope(compressed ? flagCompressed : 0, query.message));
}

/**
 * Starts the call, once the request message is in a form the upstream takes:
 * a coding the upstream accepts passes through (after checking what it
 * inflates to), any other is decompressed here.
 */
function startUnary(ctx: BridgeContext, exchange: Exchange, head: CallHead, frame: Buffer): void {
  if (responseClosed(exchange.res)) return;
  const coding = frame[0] & flagCompressed ? head.requestEncoding : undefined;
  if (coding === undefined) {
    callUpstream(ctx, exchange, head, frame);
    return;
  }
  decompress(coding, frame.subarray(envelopeHeaderLength), ctx.options.maxRequestBytes, "request message", Code.InvalidArgument).then(
    (message) => {
      if (ctx.options.upstreamCompression.includes(coding)) {
        callUpstream(ctx, exchange, head, frame);
      } else {
        head.requestEncoding = undefined;
        callUpstream(ctx, exchange, head, encodeEnvelope(0, message));
      }
    },
    (error: ConnectError) => writeConnectError(exchange, error),
  );
}

function callUpstream(ctx: BridgeContext, exchange: Exchange, head: CallHead, frame: Buffer): void {
  if (responseClosed(exchange.res)) return;
  const call = ctx.startCall(head, new UnaryResponder(exchange, head, ctx.options, head.clientAccepts ?? []));
  cancelOnDisconnect(exchange, call);
  call.end(frame);
}

/** Content-Type per codec, built once: codecs are the few the options list. */
const unaryContentTypes = new Map<string, string>();
function unaryContentType(codec: string): string {
  let type = unaryContentTypes.get(codec);
  if (type === undefined) unaryContentTypes.set(codec, (type = connectContentTypeFor(false, codec)));
  return type;
}

/** Buffers the single response message and answers once the status is known. */
class UnaryResponder implements ResponseSink {
  private headers: IncomingHttpHeaders | undefined;
  private encoding: string | undefined;
  private chunks: Buffer[] = [];
  /** Bytes in `chunks`: the frame, header included. */
  private size = 0;

  constructor(
    private readonly exchange: Exchange,
    private readonly head: CallHead,
    private readonly options: AdapterOptions,
    /** Codings the client takes, in its order of preference. */
    private readonly clientAccepts: readonly string[],
  ) {}

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    this.headers = headers;
    this.encoding = encoding;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
    return true;
  }

  onEnd(end: CallEnd): void {
    const { exchange } = this;
    disconnectWatchDone(exchange);
    if (responseClosed(exchange.res)) return;
    // The response head from the start: the host's headers, then the
    // upstream's metadata over them (as a spread of both would), one object.
    const metadata: OutgoingHttpHeaders = { ...exchange.baseHeaders };
    if (this.headers !== undefined) responseMetadata(this.headers, metadata);
    if (end.trailers !== undefined) {
      // A trailers-only block is the call's only metadata: Connect clients
      // read it from plain headers, as they would from a Connect server's error.
      responseMetadata(end.trailers, metadata, end.trailersOnly ? "" : "trailer-");
    }
    let error = end.error;
    if (error === undefined && end.messages !== 1) {
      error = new ConnectError(
        end.messages === 0
          ? "upstream sent no response message for a unary call"
          : `upstream sent ${end.messages} response messages for a unary call`,
        Code.Unimplemented,
      );
    }
    if (error !== undefined) {
      writeConnectErrorEnd(exchange, error === end.error ? end : { ...end, error }, metadata);
      return;
    }
    const { chunks } = this;
    const first = chunks[0];
    const length = this.size - envelopeHeaderLength;
    const coding = first[0] & flagCompressed ? this.encoding! : undefined;
    const compressAs =
      coding === undefined && length >= this.options.compressMinBytes
        ? pickResponseCoding(this.clientAccepts, this.options.acceptCompression)
        : undefined;
    if (coding === undefined ? compressAs === undefined : this.clientAccepts.includes(coding)) {
      // The hot path: the message goes out as the upstream sent it. A large
      // one came in several DATA chunks: they are written as they are (one
      // writev), not joined first; a join was a copy and a fresh
      // ArrayBuffer per call (docs/architecture.md, "Large messages").
      if (chunks.length === 1) this.respond(metadata, first.subarray(envelopeHeaderLength), coding);
      else if (first.byteLength > envelopeHeaderLength) this.respondChunks(metadata, length, coding);
      else this.respond(metadata, Buffer.concat(chunks).subarray(envelopeHeaderLength), coding);
      return;
    }
    const message = (chunks.length === 1 ? first : Buffer.concat(chunks)).subarray(envelopeHeaderLength);
    this.convert(message, coding).then(
      ([body, bodyCoding]) => this.respond(metadata, body, bodyCoding),
      (e: ConnectError) => writeConnectError(exchange, e, metadata),
    );
  }

  /**
   * Puts the message in a coding the client takes: decompresses what the
   * client cannot read, compresses what is large enough when it can.
   */
  private async convert(message: Buffer, coding: string | undefined): Promise<[Buffer, string | undefined]> {
    let plain = message;
    if (coding !== undefined) {
      plain = await decompress(coding, message, this.options.maxResponseBytes, "upstream response message", Code.Internal);
    }
    const target = pickResponseCoding(this.clientAccepts, this.options.acceptCompression);
    if (target === undefined || plain.byteLength < this.options.compressMinBytes) return [plain, undefined];
    return [await compress(target, plain), target];
  }

  /** `headers`: the host's headers and the metadata, owned here (onEnd built them). */
  private respond(headers: OutgoingHttpHeaders, message: Buffer, contentEncoding: string | undefined): void {
    if (!this.writeHead(headers, message.byteLength, contentEncoding)) return;
    this.exchange.res.end(message);
  }

  /** The message as the upstream's chunks, its frame header skipped (the first chunk holds all of it). */
  private respondChunks(headers: OutgoingHttpHeaders, length: number, contentEncoding: string | undefined): void {
    if (!this.writeHead(headers, length, contentEncoding)) return;
    const { res } = this.exchange;
    const { chunks } = this;
    // Corked: the head and every chunk leave in one writev when end() uncorks.
    res.cork();
    res.write(chunks[0].subarray(envelopeHeaderLength));
    for (let i = 1; i < chunks.length; i++) res.write(chunks[i]);
    res.end();
  }

  private writeHead(headers: OutgoingHttpHeaders, length: number, contentEncoding: string | undefined): boolean {
    const { exchange } = this;
    if (responseClosed(exchange.res)) return false;
    headers["content-type"] = unaryContentType(this.head.codec);
    headers["content-length"] = length;
    if (contentEncoding !== undefined) headers["content-encoding"] = contentEncoding;
    exposeHeaders(exchange, headers);
    exchange.res.writeHead(200, headers);
    return true;
  }
}
