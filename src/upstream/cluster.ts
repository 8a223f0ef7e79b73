/**
 * A cluster: the replicas behind one name, as one Upstream. Shaped like
 * grpc-js's channel: a resolver (static addresses and DNS) feeds endpoints;
 * each endpoint owns its connection pool, backoff, ejection and health
 * state; a picker (round robin or least requests) chooses among the usable
 * ones. The list of usable endpoints is rebuilt when an endpoint's state
 * changes, so a call costs one pick and one connection lookup.
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { ClusterOptions } from "./cluster-options.js";
import type { Upstream, UpstreamEndpoint, UpstreamRetry, UpstreamStream } from "./upstream.js";
import { LeastRequestsPicker, RoundRobinPicker, type Picker } from "./balancer.js";
import { Endpoint, type EndpointEvents } from "./endpoint.js";
import { HealthChecker } from "./health-check.js";
import { Resolver, systemLookup, type Lookup, type ResolvedAddress } from "./resolver.js";
import { RetryBudget } from "./retry-budget.js";
import { tlsConnectOptions } from "./upstream-tls.js";
import type { AttemptLimits } from "./attempt.js";
import type { ClusterStats } from "./stats.js";

/** What a cluster logs with: the host app's Fastify logger, or any pino-like one. */
export type ClusterLog = Pick<FastifyBaseLogger, "debug" | "info" | "warn" | "error">;

/** Replaceable parts, for tests, and what the cluster shares with the bridge around it. */
export interface ClusterHooks {
  /** DNS lookup (all addresses of a hostname); default `dns.lookup`. */
  lookup?: Lookup;
  /**
   * Largest response message the cluster's own calls (health checks)
   * accept, in bytes; the plugin passes its `maxResponseBytes`. Default:
   * 4 MiB, gRPC's default receive limit.
   */
  maxResponseMessageBytes?: number;
}

/**
 * Builds a cluster from complete, validated options (the configuration layer
 * fills in the defaults). It starts resolving and health checking at once;
 * the caller owns it and ends it with `close()`.
 *
 * @example
 * const users = createCluster(usersOptions, app.log); // usersOptions: ClusterOptions
 * app.register(grpcBridge, { upstream: users });
 * app.addHook("onClose", () => users.close());
 */
export function createCluster(options: ClusterOptions, log: ClusterLog, hooks: ClusterHooks = {}): Upstream {
  return new Cluster(options, log, hooks.lookup ?? systemLookup, { maxResponseMessageBytes: hooks.maxResponseMessageBytes ?? 4 * 1024 * 1024 });
}

export class Cluster implements Upstream, UpstreamRetry, EndpointEvents {
  readonly name: string;
  readonly authority: string;
  readonly retry: UpstreamRetry | undefined;
  readonly maxAttempts: number;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly draining = new Set<Endpoint>();
  private readonly checkers = new Map<Endpoint, HealthChecker>();
  /** Endpoints that take calls now. */
  private usable: Endpoint[] = [];
  private readonly picker: Picker<Endpoint>;
  private readonly resolver: Resolver;
  private readonly budget: RetryBudget;
  /** The failure last logged as a warning, per endpoint address or DNS name. */
  private readonly lastLogged = new Map<string, string>();
  // Counters read by stats() only.
  private retries = 0;
  private retryBudgetRefusals = 0;

  constructor(
    private readonly options: ClusterOptions,
    private readonly log: ClusterLog,
    lookup: Lookup,
    private readonly ownCallLimits: AttemptLimits,
  ) {
    this.name = options.name;
    this.authority = options.authority;
    this.maxAttempts = options.retry.maxAttempts;
    this.retry = options.retry.maxAttempts > 1 ? this : undefined;
    this.budget = new RetryBudget(options.retry);
    this.picker = options.lbPolicy === "least_requests" ? new LeastRequestsPicker() : new RoundRobinPicker();
    if (options.tls?.insecureSkipVerify) {
      log.warn({ cluster: options.name }, `cluster "${options.name}": TLS certificate verification is OFF (insecureSkipVerify); use it for development only`);
    }
    this.resolver = new Resolver(
      options.endpoints,
      options.name,
      lookup,
      options.dnsRefreshMs,
      (addresses) => this.setAddresses(addresses),
      (hostname, error) => this.logFailure(`dns ${hostname}`, error.message, { cluster: options.name, hostname }),
    );
    this.setAddresses(this.resolver.current());
    this.resolver.start();
  }

  request(headers: OutgoingHttpHeaders): UpstreamStream {
    const endpoint = this.picker.pick(this.usable);
    if (endpoint === undefined) throw this.noEndpoint();
    return endpoint.request(headers);
  }

  requestAvoiding(headers: OutgoingHttpHeaders, failed: UpstreamEndpoint): UpstreamStream {
    // Compared by identity only: an endpoint of another cluster is never picked anyway.
    const endpoint = this.picker.pick(this.usable, failed as Endpoint);
    if (endpoint === undefined) throw this.noEndpoint();
    const opened = endpoint.request(headers);
    this.retries++;
    return opened;
  }

  tryAcquire(): boolean {
    let inFlight = 1; // the call asking: its failed stream no longer counts on an endpoint
    for (const endpoint of this.endpoints.values()) inFlight += endpoint.inFlight;
    if (this.budget.tryAcquire(inFlight)) return true;
    this.retryBudgetRefusals++;
    return false;
  }

  release(): void {
    this.budget.release();
  }

  stats(): ClusterStats {
    const endpoints = [];
    for (const endpoint of this.endpoints.values()) endpoints.push(endpoint.stats());
    for (const endpoint of this.draining) endpoints.push(endpoint.stats());
    return { name: this.name, endpoints, retries: this.retries, retryBudgetRefusals: this.retryBudgetRefusals };
  }

  /** Addresses of the endpoints taking calls now (for tests and diagnostics). */
  usableAddresses(): string[] {
    return this.usable.map((endpoint) => endpoint.address);
  }

  async close(force = false): Promise<void> {
    this.resolver.stop();
    for (const checker of this.checkers.values()) checker.stop();
    this.checkers.clear();
    const all = [...this.endpoints.values(), ...this.draining];
    this.endpoints.clear();
    this.usable = [];
    await Promise.all(all.map((endpoint) => endpoint.close(force)));
  }

  onStateChange(endpoint: Endpoint): void {
    this.log.info({ cluster: this.name, endpoint: endpoint.address, usable: endpoint.usable }, `cluster "${this.name}": ${endpoint.describe()}`);
    this.rebuild();
  }

  onConnectionFailure(endpoint: Endpoint, error: Error): void {
    this.logFailure(endpoint.address, `cluster "${this.name}": connection to ${endpoint.address} failed: ${error.message}`, {
      cluster: this.name,
      endpoint: endpoint.address,
    });
  }

  onConnected(endpoint: Endpoint): void {
    if (this.lastLogged.delete(endpoint.address)) {
      this.log.info({ cluster: this.name, endpoint: endpoint.address }, `cluster "${this.name}": connected to ${endpoint.address} again`);
    }
  }

  /**
   * A failure is a warning when it is news: the first time, or when its
   * cause changed. The same failure again (every reconnect attempt, every DNS
   * refresh) is debug; an unreachable replica used to print a warning with a
   * full stack trace on each of them. The cause is in the message: a
   * connection error's stack says nothing an operator can act on.
   */
  private logFailure(key: string, message: string, fields: Record<string, unknown>): void {
    if (this.lastLogged.get(key) === message) {
      this.log.debug(fields, message);
      return;
    }
    this.lastLogged.set(key, message);
    this.log.warn(fields, message);
  }

  private setAddresses(addresses: Map<string, ResolvedAddress>): void {
    for (const [key, address] of addresses) {
      if (this.endpoints.has(key)) continue;
      const endpoint = this.createEndpoint(key, address);
      this.endpoints.set(key, endpoint);
    }
    for (const [key, endpoint] of this.endpoints) {
      if (addresses.has(key)) continue;
      this.endpoints.delete(key);
      this.checkers.get(endpoint)?.stop();
      this.checkers.delete(endpoint);
      this.draining.add(endpoint);
      void endpoint.drain().then(() => this.draining.delete(endpoint));
    }
    this.rebuild();
  }

  private createEndpoint(key: string, address: ResolvedAddress): Endpoint {
    const { options } = this;
    const tls = options.tls;
    const endpoint = new Endpoint(
      key,
      {
        origin: `${tls === undefined ? "http" : "https"}://${key}`,
        host: address.host,
        port: address.port,
        tls: tls === undefined ? undefined : tlsConnectOptions(tls, address.host, address.hostname),
        maxStreams: options.maxStreamsPerConnection,
        connectTimeoutMs: options.connectTimeoutMs,
        keepaliveIntervalMs: options.keepaliveIntervalMs,
        keepaliveTimeoutMs: options.keepaliveTimeoutMs,
        maxConnectionAgeMs: options.maxConnectionAgeMs,
      },
      options,
      this,
    );
    if (options.healthCheck !== undefined) {
      const checker = new HealthChecker(endpoint, options.healthCheck, this.name, this.authority, this.ownCallLimits);
      this.checkers.set(endpoint, checker);
      checker.start();
    }
    return endpoint;
  }

  private rebuild(): void {
    const usable: Endpoint[] = [];
    for (const endpoint of this.endpoints.values()) if (endpoint.usable) usable.push(endpoint);
    this.usable = usable;
  }

  private noEndpoint(): Error {
    const states = [...this.endpoints.values()].map((endpoint) => endpoint.describe());
    return new Error(
      `cluster "${this.name}" has no usable endpoint` + (states.length === 0 ? "" : `: ${states.join("; ")}`),
    );
  }
}
