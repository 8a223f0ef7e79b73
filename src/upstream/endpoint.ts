/**
 * One address of a cluster (a replica) and its pool of HTTP/2 connections:
 * streams share a connection until it carries its stream limit (ours, or the
 * peer's MAX_CONCURRENT_STREAMS: past it Node would queue the stream inside
 * the connection instead of starting it), then another is opened.
 *
 * It also holds whether the endpoint may take calls: not while it is backing
 * off after failed connections (jittered exponential backoff), ejected after
 * too many consecutive failures, failing its health checks, or draining
 * because DNS no longer lists it. The cluster is told whenever that changes,
 * so picking an endpoint never has to evaluate it per call.
 */
import type { OutgoingHttpHeaders } from "node:http";
import { backoffDelay } from "./backoff.js";
import type { Pickable } from "./balancer.js";
import type { ClusterOptions } from "./cluster-options.js";
import { UpstreamConnection, type ConnectionEvents, type ConnectionSettings } from "./connection.js";
import type { UpstreamEndpoint, UpstreamStream } from "./upstream.js";
import type { EndpointState, EndpointStats } from "./stats.js";

/** How `describe()` words each state, for errors and logs. */
const stateText: Record<EndpointState, string> = {
  usable: "usable",
  draining: "draining",
  unhealthy: "failing health checks",
  ejected: "ejected after consecutive connection failures",
  backing_off: "backing off after a failed connection",
};

export interface EndpointEvents {
  /** `usable` changed. */
  onStateChange(endpoint: Endpoint): void;
  /** A connection failed (logged by the cluster, with its name). */
  onConnectionFailure(endpoint: Endpoint, error: Error): void;
  /** A connection became ready: whatever failed before has recovered. */
  onConnected(endpoint: Endpoint): void;
}

export class Endpoint implements Pickable, ConnectionEvents, UpstreamEndpoint {
  inFlight = 0;
  /** Whether calls may be sent here; kept up to date by `update()`. */
  usable = true;
  /** Last answer of the health check (true until a check says otherwise). */
  private healthy = true;
  private draining = false;
  private closed = false;
  private backingOff = false;
  private ejected = false;
  private consecutiveFailures = 0;
  /** Why the endpoint is not usable, for the error a call gets. */
  lastError: string | undefined;
  // Plain counters, read only by stats(): what metrics report, at no cost per call.
  private connectFailures = 0;
  private goaways = 0;
  /** Health check outcomes, counted by the HealthChecker. */
  healthChecksPassed = 0;
  healthChecksFailed = 0;
  private readonly connections: UpstreamConnection[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    /** `host:port` as dialled, e.g. "10.0.0.7:50051". */
    readonly address: string,
    private readonly settings: ConnectionSettings,
    private readonly options: ClusterOptions,
    private readonly events: EndpointEvents,
  ) {}

  /** Starts a stream on a connection with room for it, connecting if needed. */
  request(headers: OutgoingHttpHeaders): UpstreamStream {
    let connection = this.pickConnection();
    let stream;
    try {
      stream = connection.request(headers);
    } catch {
      // The connection began closing between our check and the request
      // (GOAWAY just arrived); one fresh connection is the right second try.
      connection.retire(false);
      connection = this.pickConnection();
      stream = connection.request(headers);
    }
    this.inFlight++; // until the connection tells onStreamClosed
    return { stream, endpoint: this };
  }

  private pickConnection(): UpstreamConnection {
    for (const connection of this.connections) {
      if (connection.hasRoom) return connection;
    }
    const connection = new UpstreamConnection(this.settings, this);
    this.connections.push(connection);
    return connection;
  }

  /** Whether any connection of this endpoint is up (for health checks and tests). */
  get connected(): boolean {
    return this.connections.some((c) => c.ready && c.usable);
  }

  onReady(): void {
    this.consecutiveFailures = 0;
    this.lastError = undefined;
    this.events.onConnected(this);
  }

  onFailure(connection: UpstreamConnection, error: Error, beforeReady: boolean): void {
    this.remove(connection);
    if (this.closed) return; // our own close cut a connection short
    this.connectFailures++;
    this.events.onConnectionFailure(this, error);
    this.lastError = error.message;
    if (!beforeReady) return; // a connection that worked and then broke: the next call reconnects
    this.consecutiveFailures++;
    const { reconnectBaseMs, reconnectMaxMs, outlierConsecutiveFailures, outlierEjectionMs } = this.options;
    if (outlierConsecutiveFailures > 0 && this.consecutiveFailures >= outlierConsecutiveFailures && !this.ejected) {
      this.ejected = true;
      this.later(outlierEjectionMs, () => {
        this.ejected = false;
        this.consecutiveFailures = 0;
        this.update();
      });
    }
    if (!this.backingOff) {
      this.backingOff = true;
      this.later(backoffDelay(this.consecutiveFailures, reconnectBaseMs, reconnectMaxMs), () => {
        this.backingOff = false;
        this.update();
      });
    }
    this.update();
  }

  onGoaway(): void {
    this.goaways++;
  }

  onStreamClosed(): void {
    this.inFlight--;
  }

  onRetired(connection: UpstreamConnection): void {
    if (connection.session.destroyed) this.remove(connection);
    else connection.session.once("close", () => this.remove(connection));
  }

  /** The health check's verdict. */
  setHealthy(healthy: boolean, reason?: string): void {
    if (!healthy) this.lastError = reason;
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    if (healthy) {
      // A passing check proves the endpoint reachable: no need to wait out a backoff.
      this.backingOff = false;
      this.consecutiveFailures = 0;
    }
    this.update();
  }

  /** DNS no longer lists the address: no new calls; in-flight ones finish, then connections close. */
  drain(): Promise<void> {
    this.draining = true;
    this.update();
    return this.close(false);
  }

  async close(force: boolean): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.connections].map((c) => c.close(force)));
  }

  /** Why the endpoint takes calls or not, the first reason that applies. */
  get state(): EndpointState {
    return this.draining ? "draining" : !this.healthy ? "unhealthy" : this.ejected ? "ejected" : this.backingOff ? "backing_off" : "usable";
  }

  /** Why the endpoint takes no calls, for errors. */
  describe(): string {
    const state = this.state;
    // A usable endpoint's last error is history, not its state: "usable (ENOTFOUND)" read as a contradiction.
    return `${this.address} ${stateText[state]}${this.lastError === undefined || state === "usable" ? "" : ` (${this.lastError})`}`;
  }

  /** Its state and counters now (metrics, /clusters). */
  stats(): EndpointStats {
    const state = this.state;
    return {
      address: this.address,
      state,
      lastError: state === "usable" ? undefined : this.lastError,
      connections: this.connections.length,
      streams: this.inFlight,
      connectFailures: this.connectFailures,
      goaways: this.goaways,
      healthChecksPassed: this.healthChecksPassed,
      healthChecksFailed: this.healthChecksFailed,
    };
  }

  private update(): void {
    const usable = !this.draining && this.healthy && !this.ejected && !this.backingOff;
    if (usable === this.usable) return;
    this.usable = usable;
    this.events.onStateChange(this);
  }

  private remove(connection: UpstreamConnection): void {
    const index = this.connections.indexOf(connection);
    if (index >= 0) this.connections.splice(index, 1);
  }

  private later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }
}
