/**
 * The one schema of a bridge deployment: what a config file, the CLI flags,
 * the environment and an Envoy import all produce, and what the plugin's
 * `clusters` / `routes` options are checked against.
 *
 * Written with TypeBox so the TypeScript types and the JSON Schema that ajv
 * validates with come from the same declaration and cannot drift apart.
 * Defaults live here (`default:`), applied by ajv while validating, so
 * `--print-config` shows exactly what runs.
 */
import { Type, type Static, type TSchema, type TUnsafe } from "@sinclair/typebox";

/** What an error message says was expected, for unions (ajv's own wording is per branch). */
const expected = (text: string) => ({ "x-expected": text });

const positiveInt = (def: number, description: string) => Type.Integer({ minimum: 1, default: def, description });
const nonNegativeInt = (def: number, description: string) => Type.Integer({ minimum: 0, default: def, description });

/**
 * The same schema with every `default` taken out (and the keys that had one
 * optional): checked where it stands, completed later. Defaults inside a
 * union would be ignored, and ajv's strict mode refuses them.
 */
function withoutDefaults<T extends TSchema>(schema: T): TUnsafe<Loose<Static<T>>> {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (typeof node !== "object" || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) if (key !== "default") out[key] = strip(value);
    const properties = (node as { properties?: Record<string, { default?: unknown }> }).properties;
    if (properties !== undefined && Array.isArray(out.required)) {
      out.required = (out.required as string[]).filter((key) => properties[key]?.default === undefined);
    }
    return out;
  };
  return Type.Unsafe<Loose<Static<T>>>(strip(schema) as object);
}

/** A value as it may be written: every key of every object optional. */
export type Loose<T> = T extends Uint8Array
  ? T
  : T extends readonly (infer E)[]
    ? Loose<E>[]
    : T extends object
      ? { [K in keyof T]?: Loose<T[K]> }
      : T;

/** A content coding; "identity" is no coding and is always accepted. */
const coding = Type.String({ pattern: "^(?!identity$)[a-z0-9_-]+$", description: 'a lower-case coding name like "gzip" (not "identity")' });

/** `host:port`, `[v6]:port`, optionally prefixed with http:// or h2c://. */
export const endpointPattern = "^(?:(?:http|h2c)://)?(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$";

export const UpstreamTlsSchema = Type.Object(
  {
    ca: Type.Optional(Type.String({ description: "PEM CA bundle (inline) to verify endpoints with" })),
    caFile: Type.Optional(Type.String({ minLength: 1, description: "file holding the PEM CA bundle" })),
    serverName: Type.Optional(Type.String({ minLength: 1, description: "SNI and the name the certificate must match" })),
    cert: Type.Optional(Type.String({ description: "PEM client certificate chain (inline), for mTLS" })),
    certFile: Type.Optional(Type.String({ minLength: 1 })),
    key: Type.Optional(Type.String({ description: "PEM client private key (inline), for mTLS" })),
    keyFile: Type.Optional(Type.String({ minLength: 1 })),
    insecureSkipVerify: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const HealthCheckSchema = Type.Object(
  {
    service: Type.String({ default: "" }),
    intervalMs: positiveInt(5000, "ms between checks of each endpoint"),
    timeoutMs: positiveInt(1000, "ms a check may take"),
    healthyThreshold: positiveInt(1, "consecutive SERVING answers that bring an endpoint back"),
    unhealthyThreshold: positiveInt(2, "consecutive failures that take it out"),
  },
  { additionalProperties: false },
);

export const RetrySchema = Type.Object(
  {
    maxAttempts: positiveInt(3, "attempts in total, first included"),
    budgetPercent: Type.Number({ minimum: 0, maximum: 100, default: 20 }),
    minRetriesPerSecond: nonNegativeInt(10, "retries always allowed per second"),
  },
  { additionalProperties: false, default: {} },
);

export const ClusterSchema = Type.Object(
  {
    name: Type.String({ pattern: "^[A-Za-z0-9_.-]+$", description: "a name of letters, digits, '_', '.', '-'" }),
    endpoints: Type.Array(Type.String({ pattern: endpointPattern, description: "HOST:PORT, e.g. 10.0.0.7:50051, users.internal:50051 or [::1]:50051" }), { minItems: 1 }),
    dnsRefreshMs: positiveInt(30_000, "re-resolution interval for hostnames"),
    authority: Type.Optional(Type.String({ minLength: 1, description: "default: the first endpoint's host:port" })),
    lbPolicy: Type.Union([Type.Literal("round_robin"), Type.Literal("least_requests")], {
      default: "round_robin",
      ...expected('"round_robin" or "least_requests"'),
    }),
    tls: Type.Optional(UpstreamTlsSchema),
    maxStreamsPerConnection: positiveInt(100, "streams per connection before another is opened"),
    keepaliveIntervalMs: nonNegativeInt(30_000, "HTTP/2 PING interval; 0 disables"),
    keepaliveTimeoutMs: positiveInt(10_000, "an unanswered PING closes the connection after this"),
    maxConnectionAgeMs: nonNegativeInt(0, "0 = unlimited"),
    connectTimeoutMs: positiveInt(5000, "TCP + TLS + SETTINGS deadline"),
    reconnectBaseMs: positiveInt(1000, "reconnect backoff base"),
    reconnectMaxMs: positiveInt(30_000, "reconnect backoff cap"),
    healthCheck: Type.Optional(HealthCheckSchema),
    outlierConsecutiveFailures: positiveInt(5, "consecutive connection failures that eject an endpoint"),
    outlierEjectionMs: positiveInt(30_000, "how long an ejected endpoint stays out"),
    retry: RetrySchema,
  },
  { additionalProperties: false },
);

export const RouteSchema = Type.Object(
  {
    prefix: Type.Optional(Type.String({ pattern: "^/", description: 'a path prefix starting with "/", e.g. "/pkg.Service/" or "/pkg."' })),
    path: Type.Optional(Type.String({ pattern: "^/[^/]+/[^/]+$", description: 'a method path, e.g. "/pkg.Service/Method"' })),
    service: Type.Optional(Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_.]*$", description: 'a fully-qualified service name, e.g. "pkg.Service"' })),
    authority: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        ...expected('a host ("api.example.com", "*.example.com", "host:8080") or a list of them'),
      }),
    ),
    cluster: Type.Optional(Type.String({ minLength: 1 })),
    deny: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const CorsSchema = Type.Object(
  {
    allowedOrigins: Type.Union([Type.Literal("*"), Type.Array(Type.String({ pattern: "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+$", description: 'an origin like "https://app.example.com"' }))], {
      ...expected('"*" or a list of origins like "https://app.example.com"'),
    }),
    allowedHeaders: Type.Array(Type.String(), { default: [] }),
    exposedHeaders: Type.Array(Type.String(), { default: [] }),
    maxAgeSeconds: nonNegativeInt(7200, "preflight cache lifetime"),
    credentials: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * Server reflection's timings (`schema.reflection` as an object; `true` is
 * `{}`). Its defaults are applied when the bridge starts, not while a config
 * is loaded: ajv applies no defaults inside a union.
 */
export const ReflectionSchema = Type.Object(
  {
    refreshIntervalMs: positiveInt(300_000, "a schema older than this is refetched (in the background) by the next call"),
    timeoutMs: positiveInt(10_000, "how long one reflection exchange may take"),
    maxBackoffMs: positiveInt(60_000, "longest wait between attempts after failures"),
    unknownMethodRefetchMs: positiveInt(2000, "a call naming a method the schema lacks refetches it, at most this often"),
  },
  { additionalProperties: false },
);

/**
 * OpenTelemetry tracing (src/observability/tracing.ts). Present is on
 * (`enabled` lets a config keep it written and off). Without `exporter` the
 * spans go to the global API: the host app's SDK, if it registered one.
 */
export const TracingSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    serviceName: Type.String({ minLength: 1, default: "connect-grpc-bridge", description: "service.name of the spans the bridge exports" }),
    sampleRatio: Type.Number({ minimum: 0, maximum: 1, default: 1, description: "share of traces started here that are sampled (a client's sampled flag is followed), 0 to 1" }),
    exporter: Type.Optional(
      Type.Object(
        {
          otlp: Type.Object(
            {
              url: Type.String({ pattern: "^https?://", default: "http://127.0.0.1:4318/v1/traces", description: "an OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces" }),
              headers: Type.Record(Type.String(), Type.String(), { default: {} }),
            },
            { additionalProperties: false, default: {} },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The access log (src/observability/access-log.ts): one line per call. Present is on. */
export const AccessLogSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    successSampleRatio: Type.Number({ minimum: 0, maximum: 1, default: 1, description: "share of successful calls logged, 0 to 1 (errors are always logged)" }),
  },
  { additionalProperties: false },
);

/** Bytes of a descriptor set: what the plugin's `schema.descriptorSets` may hold besides file paths (checked by the `x-bytes` keyword). */
const DescriptorBytes = Type.Unsafe<Uint8Array>({ "x-bytes": true });

/**
 * Where the schema for JSON transcoding comes from (the plugin's `schema`
 * option). A config keeps what was written (`reflection: true` stays
 * `true`); `completeSchemaSources` fills the defaults in when the bridge
 * starts and when the config is printed.
 */
export const SchemaSourcesSchema = Type.Object(
  {
    descriptorSets: Type.Array(
      Type.Union([Type.String({ minLength: 1 }), DescriptorBytes], {
        ...expected("a descriptor set file (buf build -o FILE), or its bytes (Uint8Array)"),
      }),
      { default: [] },
    ),
    reflection: Type.Union([Type.Boolean(), withoutDefaults(ReflectionSchema)], { default: false, ...expected("a boolean or an object") }),
    allowGetForAllMethods: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

/**
 * The OpenAPI 3.1 document of the REST (google.api.http) bindings
 * (src/openapi/): where it is served. Present means served.
 */
export const OpenApiSchema = Type.Object(
  {
    path: Type.String({ pattern: "^/[^?#]*$", default: "/openapi.json", description: 'a URL path like "/openapi.json", not of the form /pkg.Service/Method' }),
    on: Type.Union([Type.Literal("admin"), Type.Literal("data")], { default: "admin", ...expected('"admin" (the admin port) or "data" (the port that serves calls)') }),
    title: Type.String({ minLength: 1, default: "connect-grpc-bridge REST API", description: "the document's info.title" }),
    version: Type.String({ minLength: 1, default: "1", description: "the document's info.version: the API's version" }),
  },
  { additionalProperties: false },
);

/** Prometheus metrics (src/observability/metrics.ts); off unless `enabled`. */
export const MetricsSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    processMetrics: Type.Boolean({ default: true, description: "also export prom-client's process metrics (CPU, memory, event loop, GC)" }),
    maxMethods: positiveInt(500, "distinct service/method label pairs; later methods are labelled \"other\""),
  },
  { additionalProperties: false, default: {} },
);

/** The admin listener (src/admin/): its own HTTP port, off unless configured. */
export const AdminSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, description: "port of the admin listener; 0 picks a free port" }),
    host: Type.String({ minLength: 1, default: "127.0.0.1", description: "address of the admin listener (loopback unless you say otherwise)" }),
  },
  { additionalProperties: false },
);

export const BridgeConfigSchema = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ minLength: 1, default: "127.0.0.1" }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
      },
      { additionalProperties: false, default: {} },
    ),
    tls: Type.Optional(
      Type.Object(
        { certFile: Type.String({ minLength: 1 }), keyFile: Type.String({ minLength: 1 }) },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Union(
      logLevels.map((l) => Type.Literal(l)),
      { default: "info", ...expected(logLevels.map((l) => `"${l}"`).join(", ")) },
    ),
    workers: positiveInt(1, "processes serving the port (node:cluster), one per core given to the bridge"),
    // 5 s + 20 s fits Kubernetes' default terminationGracePeriodSeconds (30) with room to exit.
    drainDelayMs: nonNegativeInt(5_000, "after SIGTERM, how long the port still accepts (readiness already fails) so load balancers stop sending"),
    // Checked by parseUpstreamTarget, whose messages the zero-config CLI has always given.
    upstream: Type.Optional(Type.String({ minLength: 1, description: "HOST:PORT or http://HOST:PORT (one h2c upstream, zero-config)" })),
    clusters: Type.Array(ClusterSchema, { default: [] }),
    routes: Type.Array(RouteSchema, { default: [] }),
    // No `false` form: ajv applies no defaults inside a union. No origins
    // (allowedOrigins: []) is CORS off.
    cors: Type.Optional(CorsSchema),
    maxRequestBytes: Type.Integer({ minimum: 1, maximum: 0xffffffff, default: 4 * 1024 * 1024 }),
    maxResponseBytes: Type.Integer({ minimum: 1, maximum: 0xffffffff, default: 4 * 1024 * 1024 }),
    maxHeaderEntries: positiveInt(200, "most request headers a call may carry"),
    maxStreamsPerConnection: positiveInt(100, "streams on one connection to `upstream` before another is opened"),
    unaryBodyTimeoutMs: positiveInt(30_000, "time a unary body may take to arrive"),
    codecs: Type.Array(Type.String({ pattern: "^[a-z0-9][a-z0-9.+-]*$", description: 'a lower-case codec name like "proto"' }), { default: ["proto", "json"] }),
    acceptCompression: Type.Array(coding, { default: ["gzip", "br"] }),
    // Every gRPC implementation has gzip.
    upstreamCompression: Type.Array(coding, { default: ["gzip"] }),
    compressMinBytes: nonNegativeInt(1024, "unary responses this large get compressed"),
    requireConnectProtocolHeader: Type.Boolean({ default: false }),
    // JSON transcoding (src/schema/); completed by completeSchemaSources.
    schema: Type.Optional(withoutDefaults(SchemaSourcesSchema)),
    reflectionPassthrough: Type.Boolean({ default: false }),
    // REST transcoding from google.api.http (src/rest/); needs `schema`.
    rest: Type.Object(
      { enabled: Type.Boolean({ default: false, description: "serve the schema's google.api.http bindings as REST routes" }) },
      { additionalProperties: false, default: {} },
    ),
    tracing: Type.Optional(TracingSchema),
    // The CLI writes `{}` when nobody set it (on there, off in the plugin).
    accessLog: Type.Optional(AccessLogSchema),
    drainTimeoutMs: nonNegativeInt(20_000, "once the port is closed, how long in-flight calls may run before they end with unavailable"),
    openapi: Type.Optional(OpenApiSchema),
    metrics: MetricsSchema,
    admin: Type.Optional(AdminSchema),
  },
  { additionalProperties: false },
);

export type MetricsConfig = Static<typeof MetricsSchema>;
export type AdminConfig = Static<typeof AdminSchema>;

/** A validated config with defaults applied. */
export type BridgeConfig = Static<typeof BridgeConfigSchema>;

/** Keys only a bridge process has (the CLI): where to listen, front-door TLS files, logging, processes, how long the listener outlives SIGTERM. */
export const processKeys = ["listen", "tls", "logLevel", "workers", "drainDelayMs"] as const;

/**
 * The plugin's options: the config without the process's own keys. Their
 * keys and type; `resolveOptions` validates them with the config's own
 * (compiled) validator, defaults and all.
 */
export const BridgeOptionsSchema = Type.Omit(BridgeConfigSchema, processKeys);
/** Plugin options validated, defaults applied (the JSON part: see GrpcBridgeOptions for the rest). */
export type BridgeOptionsConfig = Static<typeof BridgeOptionsSchema>;

/** `openapi` validated, defaults applied. */
export type OpenApiConfig = Static<typeof OpenApiSchema>;

/** `cors` validated: every key but allowedOrigins defaulted. */
export type CorsConfig = Static<typeof CorsSchema>;

/** `tracing` validated, defaults applied. */
export type TracingConfig = Static<typeof TracingSchema>;
/** `accessLog` validated, defaults applied. */
export type AccessLogConfig = Static<typeof AccessLogSchema>;

/** `schema` with its defaults filled in (completeSchemaSources). */
export type SchemaSources = Static<typeof SchemaSourcesSchema>;
/** `schema.reflection` as an object with its defaults filled in. */
export type ReflectionConfig = Static<typeof ReflectionSchema>;

/** A cluster as written in a config file or passed to the plugin (defaults applied once validated). */
export type ClusterConfig = Static<typeof ClusterSchema>;
/** One routing rule: a matcher (prefix, path or service; none matches every call), optionally an authority, and a cluster or `deny: true`. */
export type RouteConfig = Static<typeof RouteSchema>;

/** What users may write: every key with a default may be left out. */
export type ClusterConfigInput = Omit<Partial<ClusterConfig>, "tls" | "healthCheck" | "retry"> &
  Pick<ClusterConfig, "name" | "endpoints"> & {
    tls?: Partial<Static<typeof UpstreamTlsSchema>>;
    healthCheck?: Partial<Static<typeof HealthCheckSchema>>;
    retry?: Partial<Static<typeof RetrySchema>>;
  };
export type RouteConfigInput = RouteConfig;

export type { TSchema };
