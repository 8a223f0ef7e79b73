/**
 * What a cluster can tell about itself: a snapshot taken on demand (a
 * Prometheus scrape, the admin listener's /clusters), read from plain
 * counters the cluster, its endpoints and connections keep anyway. Nothing
 * is computed per call, so a bridge without metrics pays nothing for it.
 */

/** Why an endpoint takes calls or not; one value at a time. */
export type EndpointState = "usable" | "draining" | "unhealthy" | "ejected" | "backing_off";

/** Every EndpointState, in the order metrics list them. */
export const endpointStates: readonly EndpointState[] = ["usable", "draining", "unhealthy", "ejected", "backing_off"];

export interface EndpointStats {
  /** `host:port` as dialled. */
  readonly address: string;
  readonly state: EndpointState;
  /** Why it is not usable (or what last failed), if anything did. */
  readonly lastError: string | undefined;
  /** Open HTTP/2 connections (ready or connecting). */
  readonly connections: number;
  /** Streams in flight on this endpoint (calls and health checks). */
  readonly streams: number;
  /** Connections that failed, since the endpoint was created. */
  readonly connectFailures: number;
  /** GOAWAY frames received on its connections. */
  readonly goaways: number;
  /** Health checks answered SERVING / failed (any other outcome). */
  readonly healthChecksPassed: number;
  readonly healthChecksFailed: number;
}

export interface ClusterStats {
  readonly name: string;
  /** Endpoints DNS lists now, then the ones draining after DNS dropped them. */
  readonly endpoints: readonly EndpointStats[];
  /** Attempts sent again (on another endpoint when there was one). */
  readonly retries: number;
  /** Retries the retry budget refused. */
  readonly retryBudgetRefusals: number;
}
