/**
 * Classification, once per request: which client protocol a request speaks
 * (from its method, Content-Type and HTTP version), and whether that
 * protocol can serve it here (verb, codec, HTTP version). Everything that
 * answers a request (the dispatch, its refusals, the Fastify error and
 * not-found handlers, `rejectCall`) asks here, so the answer is always in
 * the protocol the client speaks.
 */
import type { IncomingMessage } from "node:http";
import { refusedCall, type CallEnd } from "../call.js";
import {
  connectContentTypeFor,
  grpcContentTypeFor,
  grpcWebContentTypeFor,
  parseConnectContentType,
  parseGrpcContentType,
  parseGrpcWebContentType,
} from "../protocol/content-type.js";
import { Code, ConnectError, codeToHttpStatus } from "../protocol/status.js";
import type { ClassifiedRequest, ClientProtocol } from "./client-protocol.js";
import { connectUnaryProtocol } from "./connect-unary.js";
import { connectStreamProtocol } from "./connect-stream.js";
import { grpcWebProtocol } from "./grpc-web.js";
import { grpcProtocol } from "./grpc.js";
import { writeConnectErrorEnd } from "./connect-error-response.js";
import type { AdapterOptions, Exchange } from "./exchange.js";

/**
 * A request no protocol recognises (a Content-Type such as image/jpeg, or
 * none). What connect-go's Handler answers when negotiation fails: a bare
 * HTTP status, 415 with Accept-Post or 405 with Allow, and no body, since
 * nothing says which error format the client could read. Other refusals
 * (no such procedure, a host hook's rejectCall) get Connect error JSON,
 * which curl users and browsers can read.
 */
const unrecognisedProtocol: ClientProtocol = {
  name: undefined,
  start: () => {
    throw new Error("a request no protocol recognises cannot start a call");
  },
  refuse: (exchange, _request, end) => {
    exchange.req.resume();
    if (end.http === undefined) {
      writeConnectErrorEnd(exchange, end);
      return;
    }
    const { res } = exchange;
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    res.writeHead(end.http.status, { ...exchange.baseHeaders, ...end.http.headers, "content-length": 0 });
    res.end();
  },
};

/**
 * Native gRPC sent over HTTP/1.1, where it cannot work (no trailers a gRPC
 * client reads): a plain-text answer for the human with curl; no gRPC client
 * reads a body on a non-200 answer, and none would read Connect JSON.
 */
const grpcOverHttp1Protocol: ClientProtocol = {
  name: "grpc",
  start: () => {
    throw new Error("native gRPC needs HTTP/2");
  },
  refuse: (exchange, _request, end) => {
    exchange.req.resume();
    const { res } = exchange;
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    const body = Buffer.from(end.error!.rawMessage + "\n");
    res.writeHead(end.http?.status ?? codeToHttpStatus(end.error!.code), {
      ...exchange.baseHeaders,
      ...end.http?.headers,
      "content-type": "text/plain; charset=utf-8",
      "content-length": body.byteLength,
    });
    res.end(body);
  },
};

const connectGet: ClassifiedRequest = { protocol: connectUnaryProtocol, codec: "", text: false };
const unrecognised: ClassifiedRequest = { protocol: unrecognisedProtocol, codec: "", text: false };

/**
 * Classifications by Content-Type, per HTTP version (native gRPC depends on
 * it). Clients send a handful of content types, so a call classifies with
 * one Map lookup and allocates nothing; the maps are bounded because the
 * header comes from clients.
 */
const byContentType = [new Map<string, ClassifiedRequest>(), new Map<string, ClassifiedRequest>()];
const maxCached = 256;

/** The protocol `req` speaks, with its codec. */
export function classifyRequest(req: IncomingMessage): ClassifiedRequest {
  // GET is Connect's alone (unary GET); the codec travels in the query.
  if (req.method === "GET") return connectGet;
  const contentType = req.headers["content-type"];
  if (contentType === undefined) return unrecognised;
  const http2 = req.httpVersionMajor === 2;
  const cache = byContentType[http2 ? 1 : 0];
  let classified = cache.get(contentType);
  if (classified === undefined) {
    classified = classifyContentType(contentType, http2);
    if (cache.size < maxCached) cache.set(contentType, classified);
  }
  return classified;
}

function classifyContentType(contentType: string, http2: boolean): ClassifiedRequest {
  const grpcCodec = parseGrpcContentType(contentType);
  if (grpcCodec !== undefined) return { protocol: http2 ? grpcProtocol : grpcOverHttp1Protocol, codec: grpcCodec, text: false };
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb !== undefined) return { protocol: grpcWebProtocol, codec: grpcWeb.codec, text: grpcWeb.text };
  const connect = parseConnectContentType(contentType);
  if (connect !== undefined) return { protocol: connect.stream ? connectStreamProtocol : connectUnaryProtocol, codec: connect.codec, text: false };
  return unrecognised;
}

/**
 * Why the request's protocol cannot serve it here (a verb it does not use,
 * a codec the bridge does not take, gRPC over HTTP/1.1), as the error end
 * to refuse it with; undefined when it can.
 */
export function negotiationFailure(request: ClassifiedRequest, req: IncomingMessage, options: AdapterOptions): CallEnd | undefined {
  const protocol = request.protocol;
  // A REST binding matched this verb and path already; its adapter checks the body's type.
  if (protocol.name === "rest") return undefined;
  const method = req.method;
  if (method !== "POST" && !(method === "GET" && protocol === connectUnaryProtocol)) return methodNotAllowed(request, method);
  if (protocol === connectUnaryProtocol && method === "GET") return undefined; // the query names the codec, checked there
  if (protocol === unrecognisedProtocol) {
    return unsupportedContentType(req, options);
  }
  if (protocol === grpcOverHttp1Protocol) {
    return withHttp(new ConnectError("gRPC (application/grpc) needs HTTP/2: connect with h2c or TLS (ALPN h2)", Code.Unknown), 415);
  }
  if (options.codecs.includes(request.codec)) return undefined;
  if (protocol.name === "connect") {
    return unsupportedContentType(req, options);
  }
  // gRPC and gRPC-Web clients read an error only from a 200 answer: an RPC
  // error of their own protocol, `internal` as gRPC servers answer a codec
  // they lack (the conformance suite's unexpected-codec cases).
  return refusedCall(
    new ConnectError(`unsupported codec "${request.codec}": this bridge takes ${options.codecs.join(", ")}`, Code.Internal),
  );
}

/** 415 with Accept-Post: the Content-Type names no protocol, or a codec the bridge does not take. */
function unsupportedContentType(req: IncomingMessage, options: AdapterOptions): CallEnd {
  const accepted = acceptedContentTypes(options);
  return withHttp(
    new ConnectError(`unsupported content-type "${req.headers["content-type"] ?? ""}": expected one of ${accepted}`, Code.Unknown),
    415,
    { "accept-post": accepted },
  );
}

/** The refusal of a verb the request's protocol does not use: 405 with Allow, in the protocol's form. */
export function methodNotAllowed(request: ClassifiedRequest, method: string | undefined): CallEnd {
  const name = request.protocol.name;
  if (name === "grpc" || name === "grpc-web") {
    return withHttp(new ConnectError(`HTTP method ${method} is not allowed: ${name === "grpc" ? "gRPC" : "gRPC-Web"} calls use POST`, Code.Unknown), 405, {
      allow: "POST",
    });
  }
  return withHttp(new ConnectError(`HTTP method ${method} is not allowed: use POST (or GET for unary calls)`, Code.Unknown), 405, {
    allow: "GET, POST",
  });
}

/** The refusal of a path no procedure is served at: Connect's 404, gRPC's `unimplemented`. */
export function unknownProcedure(message: string): CallEnd {
  return { ...refusedCall(new ConnectError(message, Code.Unimplemented)), unknownProcedure: true };
}

/**
 * A refusal with an HTTP status of its own (an error Fastify raised before
 * the handler ran): a 415 names what the bridge accepts, as negotiation does.
 */
export function httpRefusal(error: ConnectError, status: number, options: AdapterOptions): CallEnd {
  return withHttp(error, status, status === 415 ? { "accept-post": acceptedContentTypes(options) } : undefined);
}

function withHttp(error: ConnectError, status: number, headers?: Record<string, string>): CallEnd {
  return { ...refusedCall(error), http: { status, headers } };
}

/** Answers `request` with `end` in its protocol: the one way every refusal leaves the bridge. */
export function refuse(exchange: Exchange, request: ClassifiedRequest, end: CallEnd): void {
  request.protocol.refuse(exchange, request, end);
}

function acceptedContentTypes(options: AdapterOptions): string {
  const { codecs } = options;
  return [
    ...codecs.map((codec) => connectContentTypeFor(false, codec)),
    ...codecs.map((codec) => connectContentTypeFor(true, codec)),
    ...codecs.flatMap((codec) => [grpcWebContentTypeFor({ text: false, codec }), grpcWebContentTypeFor({ text: true, codec })]),
    ...codecs.map((codec) => grpcContentTypeFor(codec)),
  ].join(", ");
}
