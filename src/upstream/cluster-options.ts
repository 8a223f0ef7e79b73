/**
 * What a cluster is made of, as the configuration layer hands it to the
 * upstream layer. This is the contract between src/config/ (which reads files,
 * flags, environment variables and Envoy bootstraps into it, with defaults
 * applied and everything validated) and src/upstream/ (which builds
 * connections, balancing, health checks and retries from it). Every field is
 * required here: defaults belong to the config layer, so the upstream layer
 * never guesses.
 */

/** One named group of interchangeable gRPC servers (replicas). */
export interface ClusterOptions {
  /** Unique name routes refer to, e.g. "users". */
  name: string;
  /**
   * Endpoints as `host:port` (IPv6 as `[::1]:50051`). Hostnames are resolved
   * through DNS (`dns.lookup`, all addresses) and re-resolved every
   * `dnsRefreshMs`; every address becomes an endpoint.
   */
  endpoints: string[];
  /** Re-resolution interval for hostnames, ms. Default 30000. */
  dnsRefreshMs: number;
  /** `:authority` sent upstream; default: the first endpoint's `host:port`. */
  authority: string;
  /** How calls spread over healthy endpoints. Default "round_robin". */
  lbPolicy: "round_robin" | "least_requests";
  /** TLS to the endpoints; undefined means cleartext HTTP/2 (h2c). */
  tls: UpstreamTlsOptions | undefined;
  /** Streams per connection before another is opened (also capped by the peer's MAX_CONCURRENT_STREAMS). Default 100. */
  maxStreamsPerConnection: number;
  /** HTTP/2 PING interval on each connection, ms; 0 disables. Default 30000. */
  keepaliveIntervalMs: number;
  /** A PING unanswered this long closes the connection, ms. Default 10000. */
  keepaliveTimeoutMs: number;
  /** Connections older than this get no new streams (in-flight ones finish), ms; 0 = unlimited. Default 0. */
  maxConnectionAgeMs: number;
  /** TCP + TLS + SETTINGS must complete within this, ms. Default 5000. */
  connectTimeoutMs: number;
  /** Reconnect backoff after a failed connection: base and cap, ms, jittered exponential (gRPC's connection-backoff). Defaults 1000 / 30000. */
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** Active health checking; undefined disables it. */
  healthCheck: HealthCheckOptions | undefined;
  /** Passive ejection: this many consecutive connection failures take an endpoint out for `ejectionMs`. Defaults 5 / 30000. */
  outlierConsecutiveFailures: number;
  outlierEjectionMs: number;
  /** Safe retries (calls that provably never reached the application). */
  retry: RetryOptions;
}

export interface UpstreamTlsOptions {
  /** PEM CA bundle to verify endpoints with; undefined = Node's default roots. */
  ca: string | undefined;
  /** SNI and the name the certificate must match; undefined = the endpoint host. */
  serverName: string | undefined;
  /** PEM client certificate chain and key, for mTLS. Both or neither. */
  cert: string | undefined;
  key: string | undefined;
  /** Skip certificate verification (development only; logged as a warning). Default false. */
  insecureSkipVerify: boolean;
}

export interface HealthCheckOptions {
  /** `grpc.health.v1.HealthCheckRequest.service`; "" asks about the whole server. Default "". */
  service: string;
  /** Ms between checks of each endpoint. Default 5000. */
  intervalMs: number;
  /** Ms a check may take before it counts as a failure. Default 1000. */
  timeoutMs: number;
  /** Consecutive SERVING answers that bring an endpoint back. Default 1. */
  healthyThreshold: number;
  /** Consecutive failures (NOT_SERVING, error, timeout) that take it out. Default 2. */
  unhealthyThreshold: number;
}

export interface RetryOptions {
  /** Attempts in total, first included (1 disables retries). Default 3. */
  maxAttempts: number;
  /**
   * Retry budget: retries may add at most this percentage of the calls
   * currently in flight on the cluster (at least `minRetriesPerSecond`).
   * Default 20.
   */
  budgetPercent: number;
  /** Retries always allowed per second regardless of the budget. Default 10. */
  minRetriesPerSecond: number;
}
