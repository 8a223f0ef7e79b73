/**
 * REST clients (google.api.http transcoding): one more client protocol on
 * the call seam. The request (path variables, query, JSON or HttpBody body)
 * becomes the RPC's binary request message here, so the call beneath is a
 * plain binary call (the schema's transcoding layer passes it through);
 * responses become proto3 JSON (unary), newline-delimited JSON (server
 * streaming) or raw HttpBody bytes; errors are `google.rpc.Status` JSON.
 *
 * Unlike the other adapters this one reads descriptors (src/rest/): REST
 * has no message format of its own to forward.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { CallEnd, CallHandle, ResponseSink } from "../call.js";
import { decompress } from "../protocol/compression.js";
import { encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import { responseMetadata } from "../protocol/metadata.js";
import { Code, ConnectError, codeToHttpStatus, isErrorResult } from "../protocol/status.js";
import type { RestMatch, RestRoutes } from "../rest/routes.js";
import { httpBodyTypeName, restRequestMessage } from "../rest/request-message.js";
import { jsonContentType, responseBody, statusJson, type RestBody } from "../rest/response.js";
import { restCallHead } from "./call-head.js";
import type { ClassifiedRequest, ClientProtocol } from "./client-protocol.js";
import { cancelOnDisconnect, disconnectWatchDone, exposeHeaders, responseClosed, writeChunk, type BridgeContext, type Exchange } from "./exchange.js";
import { readFramedBody } from "./read-body.js";
import { writeErrorResponse } from "./connect-error-response.js";

/** A request a REST binding takes. */
export interface RestClassifiedRequest extends ClassifiedRequest {
  readonly match: RestMatch;
}

/** Content type of a server-streaming REST response: one JSON object per line. */
export const ndjsonContentType = "application/x-ndjson";

export const restProtocol: ClientProtocol = {
  name: "rest",
  start: (ctx, exchange, request, rawQuery) => startRest(ctx, exchange, (request as RestClassifiedRequest).match, rawQuery),
  refuse: (exchange, request, end) => {
    exchange.req.resume();
    const status = end.http?.status ?? (end.unknownProcedure ? 404 : codeToHttpStatus(end.error!.code));
    writeStatus(exchange, end.error!, (request as Partial<RestClassifiedRequest>).match?.types, end.http?.headers, status);
  },
};

/**
 * The REST classification of a request, when REST is on: the binding that
 * takes its verb and path, or undefined (the request is left to the RPC
 * protocols). `path` is the raw path below the plugin's prefix.
 */
export function classifyRest(routes: RestRoutes, req: IncomingMessage, path: string): RestClassifiedRequest | undefined {
  const match = routes.match(req.method ?? "", path);
  return match === undefined ? undefined : { protocol: restProtocol, codec: "json", text: false, match };
}

/** The refusal of a path no REST route and no RPC takes, in REST's form (404, google.rpc.Status). */
export const restNotFound: ClassifiedRequest = { protocol: restProtocol, codec: "json", text: false };

export function restRouteNotFound(method: string | undefined, path: string): CallEnd {
  return {
    error: new ConnectError(`no REST route for ${method} ${path}`, Code.NotFound),
    trailersOnly: false,
    messages: 0,
    midMessage: false,
    unknownProcedure: false,
    endpoint: undefined,
    attempts: 0,
    retries: undefined,
  };
}

/**
 * application/json (with parameters), a `+json` suffix type, or text/plain:
 * what fetch() sends for a string body unless told otherwise.
 */
const jsonType = /^(?:application\/(?:[\w.+-]+\+)?json|text\/plain)\s*(?:;|$)/i;

function takesRawBody(match: RestMatch): boolean {
  const { binding } = match;
  const input = binding.method.input;
  if (binding.body === "*") return input.typeName === httpBodyTypeName;
  const field = input.fields.find((f) => f.name === binding.body);
  return field?.fieldKind === "message" && field.message.typeName === httpBodyTypeName;
}

function startRest(ctx: BridgeContext, exchange: Exchange, match: RestMatch, rawQuery: string): void {
  const { req } = exchange;
  const { binding, types } = match;
  const kind = binding.method.methodKind;
  if (kind !== "unary" && kind !== "server_streaming") {
    req.resume();
    writeStatus(
      exchange,
      new ConnectError(`${binding.name} is a ${kind.replace("_", "-")} method: REST serves unary and server-streaming methods only`, Code.Unimplemented),
      types,
    );
    return;
  }
  const contentType = req.headers["content-type"];
  const raw = binding.body !== undefined && takesRawBody(match);
  if (binding.body !== undefined && !raw && contentType !== undefined && !jsonType.test(contentType)) {
    req.resume();
    writeStatus(exchange, new ConnectError(`unsupported content-type "${contentType}": ${binding.name} takes application/json`, Code.InvalidArgument), types, {
      "accept-post": jsonContentType,
    }, 415);
    return;
  }
  const coding = req.headers["content-encoding"];
  if (coding !== undefined && coding !== "identity") {
    req.resume();
    writeStatus(exchange, new ConnectError(`REST request bodies are not decompressed: Content-Encoding "${coding}"`, Code.Unimplemented), types, undefined, 415);
    return;
  }
  const head = restCallHead(ctx, exchange, kind === "unary");
  if (isErrorResult(head)) {
    req.resume();
    writeStatus(exchange, head, types);
    return;
  }
  const proceed = (body: Buffer | undefined) => {
    if (responseClosed(exchange.res)) return;
    let message: Uint8Array;
    try {
      message = restRequestMessage(binding, { bindings: match.variables, rawQuery, body, contentType }, types);
    } catch (error) {
      writeStatus(exchange, error instanceof ConnectError ? error : new ConnectError(String(error), Code.InvalidArgument), types);
      return;
    }
    const sink = head.unary ? new RestUnaryResponder(exchange, match, ctx.options.maxResponseBytes) : new RestStreamResponder(exchange, match);
    const call = ctx.startCall(head, sink);
    if (sink instanceof RestStreamResponder) sink.call = call;
    cancelOnDisconnect(exchange, call);
    call.end(encodeEnvelope(0, message));
  };
  if (binding.body === undefined) {
    // No body is part of the request: what was sent is drained, unread.
    req.resume();
    proceed(undefined);
    return;
  }
  readFramedBody(
    req,
    ctx.options.maxRequestBytes,
    0,
    ctx.options.unaryBodyTimeoutMs,
    undefined,
    (error: ConnectError | undefined, frame?: Buffer) => {
      if (error !== undefined) writeStatus(exchange, error, types);
      else proceed(frame!.subarray(envelopeHeaderLength));
    },
  );
}

/** Response headers and trailers as Connect unary sends them: trailers prefixed `trailer-`, a trailers-only block as headers. */
function unaryMetadata(headers: IncomingHttpHeaders | undefined, end: CallEnd): OutgoingHttpHeaders {
  const metadata: OutgoingHttpHeaders = {};
  if (headers !== undefined) responseMetadata(headers, metadata);
  if (end.trailers !== undefined) responseMetadata(end.trailers, metadata, end.trailersOnly ? "" : "trailer-");
  return metadata;
}

/** Buffers the one response message and answers once the status is known. */
class RestUnaryResponder implements ResponseSink {
  private headers: IncomingHttpHeaders | undefined;
  private encoding: string | undefined;
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly exchange: Exchange,
    private readonly match: RestMatch,
    private readonly maxResponseBytes: number,
  ) {}

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    this.headers = headers;
    this.encoding = encoding;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }

  onEnd(end: CallEnd): void {
    const { exchange, match } = this;
    disconnectWatchDone(exchange);
    if (responseClosed(exchange.res)) return;
    const metadata = unaryMetadata(this.headers, end);
    let error = end.error;
    if (error === undefined && end.messages !== 1) {
      error = new ConnectError(`upstream sent ${end.messages} response messages for a unary call`, Code.Unimplemented);
    }
    if (error !== undefined) {
      writeStatus(exchange, error, match.types, { ...metadata, ...end.http?.headers }, end.http?.status);
      return;
    }
    const frame = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const payload = frame.subarray(envelopeHeaderLength);
    if (frame[0] & flagCompressed) {
      decompress(this.encoding!, payload, this.maxResponseBytes, "upstream response message", Code.Internal).then(
        (plain) => this.respond(metadata, plain),
        (e: ConnectError) => writeStatus(exchange, e, match.types, metadata),
      );
      return;
    }
    this.respond(metadata, payload);
  }

  private respond(metadata: OutgoingHttpHeaders, payload: Uint8Array): void {
    const { exchange, match } = this;
    if (responseClosed(exchange.res)) return;
    let body: RestBody;
    try {
      body = responseBody(match.binding, payload, match.types);
    } catch (error) {
      writeStatus(exchange, untranscodable(match, error), match.types, metadata);
      return;
    }
    const headers: OutgoingHttpHeaders = { ...exchange.baseHeaders, ...metadata };
    headers["content-type"] = body.contentType;
    headers["content-length"] = body.body.byteLength;
    exposeHeaders(exchange, headers);
    exchange.res.writeHead(200, headers);
    exchange.res.end(body.body);
  }
}

function untranscodable(match: RestMatch, error: unknown): ConnectError {
  return new ConnectError(
    `upstream response message cannot be transcoded to JSON ${match.binding.method.output.typeName}: ${(error as Error).message}`,
    Code.Internal,
  );
}

/**
 * Server streaming: one line per message, `{"result": <message>}` (as
 * grpc-gateway writes them), and an error after the first message as a
 * last line `{"error": <google.rpc.Status>}`; before any message, an error
 * is an ordinary REST error (HTTP status, Status JSON). HttpBody responses
 * stream their bytes as they come, with the first message's content type.
 * Trailers become HTTP trailers.
 */
class RestStreamResponder implements ResponseSink {
  private readonly frames = new FrameAssembler();
  private headers: IncomingHttpHeaders | undefined;
  private started = false;
  private failed = false;
  /** The call, to cancel when a response message cannot be transcoded. */
  call: CallHandle | undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly match: RestMatch,
  ) {}

  onHeaders(headers: IncomingHttpHeaders): void {
    this.headers = headers;
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    if (this.failed) return true;
    let ready = true;
    for (const frame of this.frames.push(chunk)) {
      let body: RestBody;
      try {
        // The upstream was offered no coding; a compressed message is a broken upstream.
        if (frame[0] & flagCompressed) throw new Error("it is compressed, though the bridge offered no coding");
        body = responseBody(this.match.binding, frame.subarray(envelopeHeaderLength), this.match.types);
      } catch (error) {
        this.failed = true;
        const failure = untranscodable(this.match, error);
        this.finish(failure, undefined);
        this.call?.cancel(failure);
        return true;
      }
      const { raw } = body;
      if (!this.started) this.begin(raw ? body.contentType : ndjsonContentType);
      ready = writeChunk(this.exchange.res, raw ? body.body : `{"result":${body.body.toString("utf8")}}\n`, resume);
    }
    return ready;
  }

  onEnd(end: CallEnd): void {
    disconnectWatchDone(this.exchange);
    if (this.failed) return;
    this.finish(end.error, end);
  }

  private begin(contentType: string): void {
    const { exchange } = this;
    this.started = true;
    if (responseClosed(exchange.res)) return;
    const headers: OutgoingHttpHeaders = { ...exchange.baseHeaders };
    if (this.headers !== undefined) responseMetadata(this.headers, headers);
    headers["content-type"] = contentType;
    exposeHeaders(exchange, headers);
    exchange.res.writeHead(200, headers);
  }

  private finish(error: ConnectError | undefined, end: CallEnd | undefined): void {
    const { exchange, match } = this;
    const { res } = exchange;
    if (responseClosed(res)) return;
    if (!this.started) {
      if (error !== undefined) {
        writeStatus(exchange, error, match.types, end === undefined ? undefined : unaryMetadata(this.headers, end), end?.http?.status);
        return;
      }
      this.begin(ndjsonContentType);
    }
    if (error !== undefined) res.write(`{"error":${JSON.stringify(statusJson(error, match.types))}}\n`);
    if (end?.trailers !== undefined) {
      const trailers = responseMetadata(end.trailers, {});
      if (Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
    }
    res.end();
  }
}

/** A REST error: google.rpc.Status JSON with the HTTP status for the code. */
function writeStatus(
  exchange: Exchange,
  error: ConnectError,
  types: RestMatch["types"] | undefined,
  headers?: OutgoingHttpHeaders,
  httpStatus = codeToHttpStatus(error.code),
): void {
  writeErrorResponse(exchange, Buffer.from(JSON.stringify(statusJson(error, types))), jsonContentType, headers, httpStatus);
}
