/**
 * The plugin's options: their type, and their resolution into what the
 * adapters read. Validation and defaults are the config file's (one schema,
 * src/config/schema.ts); what JSON cannot hold is handled here, in jsonPart.
 */
import { parseUpstreamTarget, type UpstreamTarget } from "./upstream/target.js";
import type { Upstream } from "./upstream/upstream.js";
import type { ResolvedSchemaOptions, SchemaOptions } from "./schema/schema.js";
import { Lifecycle } from "./lifecycle.js";
import { deploymentOf, type Deployment } from "./config/deployment.js";
import {
  BridgeConfigSchema,
  BridgeOptionsSchema,
  processKeys,
  type BridgeOptionsConfig,
  type ClusterConfigInput,
  type Loose,
  type RouteConfig,
  type SchemaSources,
  type TracingConfig,
  type AccessLogConfig,
  type OpenApiConfig,
} from "./config/schema.js";
import { check, ConfigError, optionLine, type Issue } from "./config/validate.js";
import { completeSchemaSources, corsIssues } from "./config/rules.js";
import type { Registry } from "prom-client";
import type { MetricsSettings } from "./observability/metrics.js";
import type { AdminRoute } from "./admin/server.js";

/**
 * Options for {@link grpcBridge} and {@link createBridge}: the keys of the
 * config file's schema but the process's own (listen, tls, logLevel,
 * workers), validated against it with its defaults. A bad or unknown key is
 * a TypeError naming it.
 */
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
   * its own policy; `false` and `allowedOrigins: []` are off too.
   * `createBridge` and the CLI turn on a permissive policy for local
   * development only (see README).
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
  /**
   * REST transcoding: serve every `google.api.http` binding (and
   * `additional_bindings`) of the schema as a REST route, next to the RPC
   * paths. Needs `schema`; with reflection, the routes come from one
   * reflection answer fetched when the plugin starts. Default: off.
   */
  rest?: RestOptions;
  /**
   * OpenTelemetry tracing: a SERVER span per call (`package.Service/Method`,
   * RPC semantic-convention attributes, a `retry` event per retried
   * attempt), parented on the host's active context (or the client's W3C
   * `traceparent`), whose context the upstream receives. `{}` turns it on
   * with the global API, i.e. the SDK the host app registered; `exporter:
   * { otlp: { url } }` makes the bridge export itself (OTLP/HTTP protobuf),
   * with `serviceName` and `sampleRatio`. Default: off.
   */
  tracing?: Loose<TracingConfig>;
  /**
   * One structured line per call, at `info`, through the app's logger
   * (fastify.log): client, protocol, service, method, code, HTTP status,
   * duration, bytes, upstream endpoint, retries, trace id.
   * `successSampleRatio` logs that share of successes; errors and refusals
   * always. Default: off in the plugin (`{}` turns it on), on in the CLI.
   */
  accessLog?: Loose<AccessLogConfig>;
  /**
   * How long calls still open when the app closes may run, in milliseconds:
   * `app.close()` stops accepting, sends HTTP/2 clients GOAWAY and HTTP/1.1
   * ones `Connection: close`, waits for open calls up to this long, then
   * ends the rest with `unavailable` in their own protocol. Default: 20000.
   */
  drainTimeoutMs?: number;
  /**
   * The bridge's {@link Lifecycle}, shared with whatever reports readiness:
   * `app.close()` starts its drain (`draining` becomes true) before the
   * listener closes. Not JSON: set aside like an `Upstream` object.
   */
  lifecycle?: Lifecycle;
  /**
   * Serve an OpenAPI 3.1 document of the schema's REST bindings
   * (google.api.http): `{ path: "/openapi.json", on: "admin" | "data",
   * title, version }`, listing the bindings REST serves (so it needs
   * `rest.enabled`). `on: "data"` adds a GET route for `path` beside the
   * calls (a path of the form /pkg.Service/Method, or one a GET binding
   * takes, is refused); `on: "admin"` (the default) leaves it to the admin
   * port. Default: not served.
   */
  openapi?: OpenApiOptions;
  /**
   * Prometheus metrics (prom-client): per call, per upstream, refusals and
   * process metrics; listed in the README's Operations section. Default:
   * off, and then nothing of it is in the call path.
   */
  metrics?: BridgeMetricsOptions;
  /**
   * The admin listener: its own node:http server with /healthz, /readyz,
   * /metrics, /config and /clusters, started when the app is ready and
   * closed with it. Default: none.
   */
  admin?: BridgeAdminOptions;
}

/** Where the OpenAPI document is served, and its info. */
export interface OpenApiOptions {
  /** URL path of the document. Default: "/openapi.json". */
  path?: string;
  /** "admin": on the admin port (default); "data": on the port that serves calls. */
  on?: "admin" | "data";
  /** info.title. Default: "connect-grpc-bridge REST API". */
  title?: string;
  /** info.version: the API's version. Default: "1". */
  version?: string;
}


/** What `metrics` takes: the config file's keys, and the registry (no JSON). */
export interface BridgeMetricsOptions {
  /** Count and time calls. Default: false; true when a `registry` is given and this is left out. */
  enabled?: boolean;
  /** Also export prom-client's process metrics (`collectDefaultMetrics`). Default: true. */
  processMetrics?: boolean;
  /** Distinct service/method label pairs; later methods are labelled "other". Default: 500. */
  maxMethods?: number;
  /**
   * The prom-client Registry to register on, e.g. the host app's own, so
   * one scrape serves both. Default: a Registry of the bridge's own (the
   * admin listener serves it; `Registry.merge` joins it to another).
   */
  registry?: Registry;
}

/** What `admin` takes: where it listens, and what only code can give. */
export interface BridgeAdminOptions {
  /** Port of the admin listener; 0 picks a free one (see `onListening`). */
  port: number;
  /** Address to listen on. Default: "127.0.0.1" (loopback: the admin port is not for the public). */
  host?: string;
  /** More GET paths on the admin listener (e.g. "/openapi.json"); the built-in ones cannot be replaced. */
  extraRoutes?: ReadonlyMap<string, AdminRoute>;
  /** What /config shows (redacted); default: the plugin's validated options. The CLI gives its whole config. */
  config?: unknown;
  /** Told the admin listener's URL once it listens (`http://127.0.0.1:PORT`). */
  onListening?: (url: string) => void;
}

/** REST transcoding from google.api.http annotations. */
export interface RestOptions {
  /** Default: false. */
  enabled?: boolean;
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

/**
 * The options as the adapters read them: validated, every default applied.
 * Field for field the schema's, except the ones resolved further.
 */
export interface ResolvedOptions extends Omit<BridgeOptionsConfig, "upstream" | "clusters" | "routes" | "cors" | "schema" | "tracing" | "accessLog" | "metrics" | "admin"> {
  /** The single upstream, or undefined when `deployment` routes calls to clusters. */
  upstream: UpstreamTarget | Upstream | undefined;
  deployment: Deployment | undefined;
  /** Undefined: CORS off (no `cors`, `cors: false`, or no allowed origin). */
  cors: Required<BridgeCorsOptions> | undefined;
  /** Undefined: no schema source, JSON passes through. */
  schema: ResolvedSchemaOptions | undefined;
  /** Undefined: tracing off (not given, or `enabled: false`). */
  tracing: TracingConfig | undefined;
  /** Undefined: no access log. */
  accessLog: AccessLogConfig | undefined;
  /** Undefined when the host gave none: the drain then tells nobody. */
  lifecycle: Lifecycle | undefined;
  /** Undefined: metrics off. */
  metrics: MetricsSettings | undefined;
  /** Undefined: no admin listener. */
  admin: ResolvedAdminOptions | undefined;
}

/** The admin listener's options, validated, with the code-only parts. */
export interface ResolvedAdminOptions extends Omit<BridgeAdminOptions, "host" | "config"> {
  readonly host: string;
  /** What /config shows, before redaction. */
  readonly config: unknown;
}

// Compile-time: the options and the schema name the same keys, and a
// validated config is valid options (the CLI hands its config over as it is).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Options JSON cannot hold, so the schema does not list them. */
type ObjectOptions = "lifecycle";
true satisfies Same<Exclude<keyof GrpcBridgeOptions, ObjectOptions>, keyof BridgeOptionsConfig>;
true satisfies (BridgeOptionsConfig extends GrpcBridgeOptions ? true : false);
true satisfies Same<SchemaOptions, Loose<SchemaSources>>;
true satisfies Same<OpenApiOptions, Loose<OpenApiConfig>>;

/**
 * Checks the options against the schema, applies its defaults and resolves
 * the rest; throws a TypeError naming each bad option, the value and what
 * was expected.
 */
export function resolveOptions(options: GrpcBridgeOptions): ResolvedOptions {
  // An empty list is no list, as in a config file (where both default to []).
  const clustered = isList(options?.clusters);
  if (options === null || typeof options !== "object" || (options.upstream === undefined && !clustered)) {
    throw new TypeError('connect-grpc-bridge: option "upstream" is required, e.g. { upstream: "127.0.0.1:50051" }, unless "clusters" are given');
  }
  if (options.upstream !== undefined && clustered) {
    throw new TypeError('connect-grpc-bridge: options "upstream" and "clusters" exclude each other: put the upstream in a cluster');
  }
  if (isList(options.routes) && !clustered) {
    throw new TypeError('connect-grpc-bridge: option "routes" needs "clusters" to route to');
  }
  const { json, upstream, lifecycle, registry, admin } = jsonPart(options);
  // The config file's own validator (compiled once per process, shared with
  // the CLI); the process's keys are no options, whatever the schema allows.
  const issues: Issue[] = processKeys.filter((key) => key in json).map((key) => ({ at: key, kind: "unknown", known: optionKeys }));
  for (const issue of check(BridgeConfigSchema, json) ?? []) {
    issues.push(issue.kind === "unknown" && !/[.[]/.test(issue.at) ? { ...issue, known: optionKeys } : issue);
  }
  if (issues.length > 0) throw optionsError(issues.map(optionLine));
  const config = json as BridgeOptionsConfig;
  const corsProblems = corsIssues(config.cors, "cors");
  if (corsProblems.length > 0) throw optionsError(corsProblems.map(optionLine));
  let deployment: Deployment | undefined;
  if (clustered) {
    try {
      deployment = deploymentOf(config.clusters, config.routes, "options");
    } catch (error) {
      if (error instanceof ConfigError) throw optionsError(error.issues);
      throw error;
    }
  }
  let target: UpstreamTarget | Upstream | undefined = upstream;
  if (target === undefined && config.upstream !== undefined) {
    try {
      target = parseUpstreamTarget(config.upstream);
    } catch (error) {
      throw optionsError([`option "upstream": ${(error as Error).message}`]);
    }
  }
  const cors = config.cors === undefined || config.cors.allowedOrigins.length === 0 ? undefined : config.cors;
  // One literal in one order: every bridge's options have one shape, read on every call.
  return {
    upstream: target,
    deployment,
    maxRequestBytes: config.maxRequestBytes,
    maxResponseBytes: config.maxResponseBytes,
    maxHeaderEntries: config.maxHeaderEntries,
    maxStreamsPerConnection: config.maxStreamsPerConnection,
    unaryBodyTimeoutMs: config.unaryBodyTimeoutMs,
    codecs: config.codecs,
    acceptCompression: config.acceptCompression,
    upstreamCompression: config.upstreamCompression,
    compressMinBytes: config.compressMinBytes,
    requireConnectProtocolHeader: config.requireConnectProtocolHeader,
    cors,
    schema: schemaOptions(config.schema),
    reflectionPassthrough: config.reflectionPassthrough,
    rest: config.rest,
    tracing: config.tracing?.enabled === true ? config.tracing : undefined,
    accessLog: config.accessLog?.enabled === true ? config.accessLog : undefined,
    drainTimeoutMs: config.drainTimeoutMs,
    lifecycle,
    openapi: config.openapi,
    metrics: config.metrics.enabled
      ? { registry, processMetrics: config.metrics.processMetrics, maxMethods: config.metrics.maxMethods }
      : undefined,
    admin:
      config.admin === undefined
        ? undefined
        : { ...admin, port: config.admin.port, host: config.admin.host, config: admin.config ?? json },
  };
}

/** The options, as an unknown one's message lists them. */
const optionKeys = Object.keys(BridgeOptionsSchema.properties).join(", ");

/** Keys Fastify's `register` takes for itself and leaves in the plugin's options. */
const fastifyKeys = ["prefix", "logLevel", "logSerializers"];

/**
 * The options as the schema sees them, and what JSON cannot hold, handled
 * here and nowhere else: a Lifecycle (set aside, shared), an Upstream object as `upstream` (set aside: the
 * caller owns it), a URL (its text), `cors: false` (no CORS: the schema has
 * no `false` form, ajv applies no defaults inside a union), Fastify's own
 * register keys (not ours). Descriptor set bytes stay; the schema knows them
 * (`x-bytes`). A copy of the plain objects and arrays: ajv fills defaults in
 * place, and the caller's objects stay theirs.
 */
function jsonPart(options: GrpcBridgeOptions): {
  json: Record<string, unknown>;
  upstream: Upstream | undefined;
  lifecycle: Lifecycle | undefined;
  registry: Registry | undefined;
  admin: Omit<BridgeAdminOptions, "port" | "host">;
} {
  const json = plainCopy(options) as Record<string, unknown>;
  // The metrics registry and the admin listener's hooks are objects of the caller's.
  const registry = options.metrics?.registry;
  if (isObject(json.metrics)) {
    delete json.metrics.registry;
    // A registry handed in asks for metrics, unless they are turned off.
    if (registry !== undefined && json.metrics.enabled === undefined) json.metrics.enabled = true;
  }
  const admin: Omit<BridgeAdminOptions, "port" | "host"> = {};
  if (isObject(json.admin)) {
    for (const key of ["extraRoutes", "config", "onListening"] as const) {
      if (key in json.admin) {
        (admin as Record<string, unknown>)[key] = (options.admin as unknown as Record<string, unknown>)[key];
        delete json.admin[key];
      }
    }
  }
  for (const key of fastifyKeys) delete json[key];
  const lifecycle = options.lifecycle;
  if (lifecycle !== undefined && !(lifecycle instanceof Lifecycle)) {
    throw new TypeError(`connect-grpc-bridge: option "lifecycle" must be a Lifecycle (import { Lifecycle } from "connect-grpc-bridge"), got ${typeof lifecycle}`);
  }
  delete json.lifecycle;
  if (json.cors === false) delete json.cors;
  let upstream: Upstream | undefined;
  if (isUpstream(options.upstream)) {
    upstream = options.upstream;
    delete json.upstream;
  } else if (options.upstream instanceof URL) {
    json.upstream = options.upstream.href;
  }
  return { json, upstream, lifecycle, registry, admin };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function plainCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainCopy);
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = plainCopy(item);
  return out;
}

function schemaOptions(written: BridgeOptionsConfig["schema"]): ResolvedSchemaOptions | undefined {
  const sources = completeSchemaSources(written);
  if (sources === undefined || (sources.descriptorSets.length === 0 && sources.reflection === false)) return undefined;
  return {
    descriptorSets: sources.descriptorSets,
    reflection: sources.reflection === false ? undefined : sources.reflection,
    allowGetForAllMethods: sources.allowGetForAllMethods,
  };
}

function optionsError(lines: string[]): TypeError {
  return new TypeError(
    lines.length === 1 ? `connect-grpc-bridge: ${lines[0]}` : `connect-grpc-bridge: invalid options:\n  ${lines.join("\n  ")}`,
  );
}

/** A list with something in it; anything else not a list is the schema's to name. */
function isList(value: unknown): boolean {
  return value !== undefined && (!Array.isArray(value) || value.length > 0);
}

function isUpstream(value: unknown): value is Upstream {
  return typeof value === "object" && value !== null && typeof (value as Upstream).request === "function";
}
