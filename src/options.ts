/**
 * Options of the bridge plugin, their defaults, and their validation.
 */
import { defaultEncodings, defaultUpstreamEncodings } from "./protocol/compression.js";
import { parseUpstreamTarget, type UpstreamTarget } from "./upstream/target.js";
import type { Upstream } from "./upstream/upstream.js";
import { resolveSchemaOptions, type ResolvedSchemaOptions, type SchemaOptions } from "./schema/schema.js";
import { resolveDeployment, type Deployment } from "./config/deployment.js";
import type { ClusterConfigInput, RouteConfig } from "./config/schema.js";

/** Options for {@link grpcBridge} and {@link createBridge}. */
export interface GrpcBridgeOptions {
  /**
   * The gRPC server to forward to, over cleartext HTTP/2 (h2c):
   * `"127.0.0.1:50051"` or `"http://127.0.0.1:50051"`; or an {@link Upstream}
   * built by the caller (e.g. with `createCluster`), which the caller owns
   * and closes. Leave it out when `clusters` are given.
   */
  upstream?: string | URL | Upstream;
  /**
   * Named groups of gRPC servers, built with `createCluster` and closed with
   * the app; `routes` decide which one serves each call. Each needs `name`
   * and `endpoints`; every other key has the default documented in the
   * README's Configuration section. Instead of `upstream`.
   */
  clusters?: ClusterConfigInput[];
  /**
   * Ordered rules, first match wins: `{ prefix | path | service, authority?,
   * cluster | deny: true }`. A call no rule matches, or a denied one, gets
   * `unimplemented` without reaching any upstream. Optional with a single
   * cluster (everything goes there).
   */
  routes?: RouteConfig[];
  /**
   * Largest request message accepted from a client, in bytes, as it travels
   * (compressed size when compressed). Unary bodies are buffered up to this
   * size. Larger ones get `resource_exhausted`. Default: 4 MiB, gRPC's
   * default receive limit.
   */
  maxRequestBytes?: number;
  /**
   * Largest response message accepted from the upstream, in bytes, as it
   * travels. Unary responses are buffered up to this size. Default: 4 MiB.
   */
  maxResponseBytes?: number;
  /**
   * Streams the bridge runs on one upstream connection before it opens
   * another (also capped by the upstream's MAX_CONCURRENT_STREAMS).
   * Default: 100.
   */
  maxStreamsPerConnection?: number;
  /**
   * Most request headers (entries) a call may carry; more get
   * `resource_exhausted`. Header bytes are bounded by the server's
   * maxHeaderSize (Node: 16 KiB). Default: 200.
   */
  maxHeaderEntries?: number;
  /**
   * How long a unary request body may take to arrive, in milliseconds
   * (slowloris); exceeded, the call ends with `deadline_exceeded`. Streaming
   * bodies have no such limit: a quiet stream is a healthy one. Default: 30000.
   */
  unaryBodyTimeoutMs?: number;
  /**
   * Codecs clients may use (`application/<codec>`,
   * `application/connect+<codec>`, GET `encoding=`, gRPC-Web and native
   * gRPC `+<codec>`); others are refused (Connect: HTTP 415; gRPC and
   * gRPC-Web: grpc-status 13).
   * Messages are never decoded: each codec is forwarded to the upstream as
   * `application/grpc+<codec>`. Default: `["proto", "json"]`.
   */
  codecs?: string[];
  /**
   * Content codings clients may use for requests and get in responses.
   * Default: `["gzip", "br"]`. Codings in `upstreamCompression` pass through
   * untouched; others (gzip, deflate, br) are converted by the bridge, for
   * unary calls.
   */
  acceptCompression?: string[];
  /**
   * Codings the upstream accepts, forwarded as they are (grpc-encoding) and
   * offered in grpc-accept-encoding. Default: `["gzip"]`, which every gRPC
   * implementation supports.
   */
  upstreamCompression?: string[];
  /**
   * Unary responses at least this large are compressed by the bridge when
   * the client accepts a coding and the upstream sent them uncompressed.
   * Default: 1024 bytes.
   */
  compressMinBytes?: number;
  /**
   * Reject Connect requests without `Connect-Protocol-Version: 1` (and GET
   * requests without `connect=v1`). Default: false, so plain `curl` works.
   */
  requireConnectProtocolHeader?: boolean;
  /**
   * CORS for browser clients (Connect and gRPC-Web), through @fastify/cors,
   * applied to the bridge's routes only. Default: off — a host app may have
   * its own policy. `createBridge` and the CLI turn on a permissive policy
   * for local development only (see README).
   */
  cors?: BridgeCorsOptions | false;
  /**
   * A protobuf schema, from descriptor sets and/or the upstream's server
   * reflection. With one, JSON calls (Connect, gRPC-Web `+json`) are
   * transcoded to binary protobuf for the upstream and back; binary calls
   * are unaffected. Default: none (JSON passes through as
   * `application/grpc+json`).
   */
  schema?: SchemaOptions;
  /**
   * Forward calls to the gRPC server reflection services
   * (`grpc.reflection.v1.ServerReflection`, `v1alpha`) to the upstream, so
   * `buf curl --reflect` and grpcurl work through the bridge. Default: false:
   * the bridge answers them `unimplemented`, a public listener should not
   * describe its backends.
   */
  reflectionPassthrough?: boolean;
}

/** Who may call the bridge from a browser, and what the page may read. */
export interface BridgeCorsOptions {
  /** Exact origins (`"https://app.example.com"`), or `"*"` for any origin. */
  allowedOrigins: readonly string[] | "*";
  /**
   * Request headers pages may send beyond the protocol's own (Content-Type,
   * Connect-Protocol-Version, Connect-Timeout-Ms, Grpc-Timeout, X-Grpc-Web,
   * X-User-Agent): the application's custom metadata, e.g. `Authorization`.
   */
  allowedHeaders?: readonly string[];
  /**
   * Response headers pages may read beyond Grpc-Status, Grpc-Message,
   * Grpc-Status-Details-Bin. The metadata headers of each response are
   * exposed automatically.
   */
  exposedHeaders?: readonly string[];
  /** How long browsers may cache a preflight answer, in seconds. Default: 7200. */
  maxAgeSeconds?: number;
  /** Allow credentials (cookies); needs explicit origins, not "*". Default: false. */
  credentials?: boolean;
}

export interface ResolvedOptions {
  /** The single upstream, or undefined when `deployment` routes calls to clusters. */
  upstream: UpstreamTarget | Upstream | undefined;
  deployment: Deployment | undefined;
  maxRequestBytes: number;
  maxResponseBytes: number;
  maxHeaderEntries: number;
  maxStreamsPerConnection: number;
  unaryBodyTimeoutMs: number;
  codecs: readonly string[];
  acceptCompression: readonly string[];
  upstreamCompression: readonly string[];
  compressMinBytes: number;
  requireConnectProtocolHeader: boolean;
  cors: Required<BridgeCorsOptions> | undefined;
  schema: ResolvedSchemaOptions | undefined;
  reflectionPassthrough: boolean;
}

export const defaultMaxMessageBytes = 4 * 1024 * 1024;

/** Applies defaults and checks every option; throws a TypeError naming the bad one. */
export function resolveOptions(options: GrpcBridgeOptions): ResolvedOptions {
  if (options === null || typeof options !== "object" || (options.upstream === undefined && options.clusters === undefined)) {
    throw new TypeError('connect-grpc-bridge: option "upstream" is required, e.g. { upstream: "127.0.0.1:50051" }, unless "clusters" are given');
  }
  if (options.upstream !== undefined && options.clusters !== undefined) {
    throw new TypeError('connect-grpc-bridge: options "upstream" and "clusters" exclude each other: put the upstream in a cluster');
  }
  if (options.routes !== undefined && options.clusters === undefined) {
    throw new TypeError('connect-grpc-bridge: option "routes" needs "clusters" to route to');
  }
  const maxRequestBytes = byteLimit("maxRequestBytes", options.maxRequestBytes);
  const maxResponseBytes = byteLimit("maxResponseBytes", options.maxResponseBytes);
  const codecs = (options.codecs ?? ["proto", "json"]).map((c) => c.toLowerCase());
  for (const codec of codecs) {
    if (!/^[a-z0-9][a-z0-9.+-]*$/.test(codec)) {
      throw new TypeError(`connect-grpc-bridge: option "codecs" has an invalid codec name "${codec}"`);
    }
  }
  const acceptCompression = codings("acceptCompression", options.acceptCompression ?? defaultEncodings);
  return {
    upstream:
      options.upstream === undefined ? undefined : isUpstream(options.upstream) ? options.upstream : parseUpstreamTarget(options.upstream),
    deployment: options.clusters === undefined ? undefined : resolveDeployment(options.clusters, options.routes, "options"),
    maxRequestBytes,
    maxResponseBytes,
    maxHeaderEntries: positiveInteger("maxHeaderEntries", options.maxHeaderEntries, 200),
    maxStreamsPerConnection: positiveInteger("maxStreamsPerConnection", options.maxStreamsPerConnection, 100),
    unaryBodyTimeoutMs: positiveInteger("unaryBodyTimeoutMs", options.unaryBodyTimeoutMs, 30_000),
    codecs,
    acceptCompression,
    upstreamCompression: codings("upstreamCompression", options.upstreamCompression ?? defaultUpstreamEncodings),
    compressMinBytes: options.compressMinBytes ?? 1024,
    requireConnectProtocolHeader: options.requireConnectProtocolHeader ?? false,
    cors: resolveCors(options.cors),
    schema: resolveSchemaOptions(options.schema),
    reflectionPassthrough: options.reflectionPassthrough ?? false,
  };
}

function byteLimit(name: string, value: number | undefined): number {
  const limit = value ?? defaultMaxMessageBytes;
  if (!Number.isSafeInteger(limit) || limit <= 0 || limit > 0xffffffff) {
    throw new TypeError(`connect-grpc-bridge: option "${name}" must be a positive integer below 2^32, got ${value}`);
  }
  return limit;
}

function resolveCors(cors: BridgeCorsOptions | false | undefined): Required<BridgeCorsOptions> | undefined {
  if (cors === undefined || cors === false) return undefined;
  const origins = cors.allowedOrigins;
  if (origins !== "*" && (!Array.isArray(origins) || origins.some((o) => typeof o !== "string" || !/^[a-z][a-z0-9+.-]*:\/\/[^/]+$/i.test(o)))) {
    throw new TypeError(
      `connect-grpc-bridge: option "cors.allowedOrigins" must be "*" or a list of origins like "https://app.example.com", got ${JSON.stringify(origins)}`,
    );
  }
  if (cors.credentials && origins === "*") {
    throw new TypeError('connect-grpc-bridge: option "cors.credentials" needs explicit "cors.allowedOrigins", not "*"');
  }
  return {
    allowedOrigins: origins,
    allowedHeaders: cors.allowedHeaders ?? [],
    exposedHeaders: cors.exposedHeaders ?? [],
    maxAgeSeconds: cors.maxAgeSeconds ?? 7200,
    credentials: cors.credentials ?? false,
  };
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new TypeError(`connect-grpc-bridge: option "${name}" must be a positive integer, got ${value}`);
  }
  return n;
}

function codings(name: string, list: readonly string[]): string[] {
  const lower = list.map((e) => e.toLowerCase());
  for (const coding of lower) {
    if (!/^[a-z0-9_-]+$/.test(coding) || coding === "identity") {
      throw new TypeError(`connect-grpc-bridge: option "${name}" has an invalid coding "${coding}"`);
    }
  }
  return lower;
}

function isUpstream(value: unknown): value is Upstream {
  return typeof value === "object" && value !== null && typeof (value as Upstream).request === "function";
}
