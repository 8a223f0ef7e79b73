/**
 * Request heads of the client protocols turned into a CallHead: protocol
 * version, timeout, metadata and compression.
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { CallHead } from "../call.js";
import { copyRequestMetadata, newHeaderBlock } from "../protocol/metadata.js";
import { parseConnectTimeout, parseGrpcTimeout } from "../protocol/timeout.js";
import { acceptableEncodings, convertibleEncodings, parseEncodingList } from "../protocol/compression.js";
import { Code, ConnectError, isErrorResult } from "../protocol/status.js";
import type { BridgeContext, Exchange } from "./exchange.js";

interface HeadInput {
  codec: string;
  /** Coding of the request message(s), from Content-Encoding, Connect-Content-Encoding or the GET query. */
  requestEncoding: string | undefined;
  /** The client's Accept-Encoding or Connect-Accept-Encoding. */
  acceptEncoding: string | undefined;
  /** A GET request carries its protocol version in the query, checked there. */
  isGet: boolean;
  /** Unary calls can convert codings; streams pass them through only. */
  unary: boolean;
}

/** Builds the CallHead, or the ConnectError the request deserves. */
export function connectCallHead(ctx: BridgeContext, exchange: Exchange, input: HeadInput): CallHead | ConnectError {
  const headers = exchange.req.headers;
  const version = headers["connect-protocol-version"];
  if (!input.isGet) {
    if (version === undefined && ctx.options.requireConnectProtocolHeader) {
      return new ConnectError("missing required header: set Connect-Protocol-Version to 1", Code.InvalidArgument);
    }
    if (version !== undefined && version !== "1") {
      return new ConnectError(`Connect-Protocol-Version must be "1": got "${version}"`, Code.InvalidArgument);
    }
  }
  const timeoutValue = headers["connect-timeout-ms"];
  const timeout = parseConnectTimeout(Array.isArray(timeoutValue) ? timeoutValue[0] : timeoutValue);
  if (isErrorResult(timeout)) return timeout;

  const shape: CallShape = { protocol: "connect", unary: input.unary, get: input.isGet };
  return callHead(ctx, exchange, shape, input.codec, timeout, input.requestEncoding, input.acceptEncoding);
}

/** Which protocol and call shape a head describes. */
type CallShape = Pick<CallHead, "protocol" | "unary" | "get">;
const grpcWebShape: CallShape = { protocol: "grpc-web", unary: false, get: false };
const grpcShape: CallShape = { protocol: "grpc", unary: false, get: false };

/**
 * A gRPC-Web request head: grpc-timeout, grpc-encoding and
 * grpc-accept-encoding mean what they mean to the upstream.
 */
export function grpcWebCallHead(ctx: BridgeContext, exchange: Exchange, codec: string): CallHead | ConnectError {
  const headers = exchange.req.headers;
  const timeout = parseGrpcTimeout(headerValue(headers["grpc-timeout"]));
  if (isErrorResult(timeout)) return timeout;
  return callHead(
    ctx,
    exchange,
    grpcWebShape,
    codec,
    timeout,
    headerValue(headers["grpc-encoding"]),
    headerValue(headers["grpc-accept-encoding"]),
  );
}

function callHead(
  ctx: BridgeContext,
  exchange: Exchange,
  shape: CallShape,
  codec: string,
  timeout: number | undefined,
  encoding: string | undefined,
  acceptEncoding: string | undefined,
): CallHead | ConnectError {
  const unary = shape.unary;
  const requestEncoding = codingOf(encoding);
  if (requestEncoding !== undefined && !ctx.options.acceptCompression.includes(requestEncoding)) {
    return new ConnectError(
      `unknown compression "${requestEncoding}": supported encodings are ${[...ctx.options.acceptCompression, "identity"].join(", ")}`,
      Code.Unimplemented,
    );
  }
  if (
    requestEncoding !== undefined &&
    !unary &&
    !ctx.options.upstreamCompression.includes(requestEncoding) &&
    !convertibleEncodings.includes(requestEncoding)
  ) {
    // A coding only the upstream could read, and it does not.
    return new ConnectError(
      `compression "${requestEncoding}" cannot be used for streams here; use ${[...ctx.options.upstreamCompression, ...convertibleEncodings, "identity"].join(", ")}`,
      Code.Unimplemented,
    );
  }
  // What the upstream may compress with: what the client takes (a client
  // that names none takes the one it used) and the upstream speaks.
  const accepts = parsedAccepts(acceptEncoding ?? requestEncoding, ctx.options.upstreamCompression);
  return withMetadata(ctx, exchange, shape, codec, timeout, requestEncoding, accepts.upstream, accepts.client);
}

/** An Accept-Encoding value parsed, and what of it the upstream may use. */
interface ParsedAccepts {
  readonly client: readonly string[];
  readonly upstream: string | undefined;
}
const noAccepts: ParsedAccepts = { client: Object.freeze([]), upstream: undefined };

/**
 * Parsed Accept-Encoding values by value, per upstream coding list: clients
 * send the same few values on every call. Bounded, since the header comes
 * from clients; past the bound values are parsed afresh.
 */
const acceptsCache = new WeakMap<readonly string[], Map<string, ParsedAccepts>>();
const maxCachedAccepts = 256;

function parsedAccepts(value: string | undefined, upstreamCompression: readonly string[]): ParsedAccepts {
  if (value === undefined) return noAccepts;
  let cache = acceptsCache.get(upstreamCompression);
  if (cache === undefined) acceptsCache.set(upstreamCompression, (cache = new Map()));
  let parsed = cache.get(value);
  if (parsed === undefined) {
    // Frozen: every call with this value shares the list.
    const client = Object.freeze(parseEncodingList(value));
    parsed = { client, upstream: acceptableEncodings(client, upstreamCompression) };
    if (cache.size < maxCachedAccepts) cache.set(value, parsed);
  }
  return parsed;
}

/** The coding a header names; identity (or nothing) is undefined. */
function codingOf(value: string | undefined): string | undefined {
  const coding = value?.trim().toLowerCase();
  return coding === "identity" || coding === "" ? undefined : coding;
}

/** The CallHead, once the request's metadata passes. */
function withMetadata(
  ctx: BridgeContext,
  exchange: Exchange,
  shape: CallShape,
  codec: string,
  timeoutMs: number | undefined,
  requestEncoding: string | undefined,
  acceptEncoding: string | undefined,
  clientAccepts: readonly string[] | undefined,
): CallHead | ConnectError {
  const metadata = requestMetadata(ctx, exchange);
  if (isErrorResult(metadata)) return metadata;
  // One literal with every field: the head keeps one shape for its whole life.
  return {
    protocol: shape.protocol,
    unary: shape.unary,
    get: shape.get,
    path: exchange.path,
    codec,
    metadata,
    timeoutMs,
    requestEncoding,
    acceptEncoding,
    clientAccepts,
  };
}

const restUnaryShape: CallShape = { protocol: "rest", unary: true, get: false };
const restStreamShape: CallShape = { protocol: "rest", unary: false, get: false };

/**
 * A REST request head (google.api.http): binary messages the REST adapter
 * builds itself, no compression either way, the deadline from
 * `grpc-timeout` as grpc-gateway reads it; metadata as for Connect.
 */
export function restCallHead(ctx: BridgeContext, exchange: Exchange, unary: boolean): CallHead | ConnectError {
  const timeout = parseGrpcTimeout(headerValue(exchange.req.headers["grpc-timeout"]));
  if (isErrorResult(timeout)) return timeout;
  return withMetadata(ctx, exchange, unary ? restUnaryShape : restStreamShape, "proto", timeout, undefined, undefined, []);
}

/** One value for a header that may repeat: repeated lists are joined. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

/**
 * A native gRPC request head, passed through: the upstream, not the bridge,
 * decides which codings it supports.
 */
export function grpcCallHead(ctx: BridgeContext, exchange: Exchange, codec: string): CallHead | ConnectError {
  const headers = exchange.req.headers;
  const timeout = parseGrpcTimeout(headerValue(headers["grpc-timeout"]));
  if (isErrorResult(timeout)) return timeout;
  const requestEncoding = codingOf(headerValue(headers["grpc-encoding"]));
  return withMetadata(ctx, exchange, grpcShape, codec, timeout, requestEncoding, headerValue(headers["grpc-accept-encoding"]), undefined);
}

/** The request's metadata for the upstream, or why it cannot be sent. */
function requestMetadata(ctx: BridgeContext, exchange: Exchange): OutgoingHttpHeaders | ConnectError {
  const raw = exchange.req.rawHeaders;
  if (raw.length / 2 > ctx.options.maxHeaderEntries) {
    return new ConnectError(
      `${raw.length / 2} request headers exceed the limit of ${ctx.options.maxHeaderEntries}`,
      Code.ResourceExhausted,
    );
  }
  const metadata = newHeaderBlock();
  const headers = exchange.req.headers;
  const problem = copyRequestMetadata(raw, metadata, headers.connection ?? null, headers);
  return problem === undefined ? metadata : new ConnectError(problem, Code.InvalidArgument);
}
