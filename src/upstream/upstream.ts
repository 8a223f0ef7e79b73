/**
 * The seam between calls and wherever they go upstream. A call needs one
 * thing from an upstream: an HTTP/2 stream to an endpoint that can serve it.
 * Pools, balancing, health and retries live behind this interface.
 */
import type * as http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import type { ClusterStats } from "./stats.js";

/** The endpoint a stream runs on: named in errors, avoided by a retry. */
export interface UpstreamEndpoint {
  /** `host:port` as dialled (IPv6 bracketed), e.g. "10.0.0.7:50051". */
  readonly address: string;
}

/** A stream an upstream started, and the endpoint it runs on. */
export interface UpstreamStream {
  readonly stream: http2.ClientHttp2Stream;
  readonly endpoint: UpstreamEndpoint;
}

/** What a call needs to reach an upstream: where streams come from and what to call it. */
export interface CallTarget {
  /** Name used in logs and errors (the cluster name, or the address). */
  readonly name: string;
  /** `:authority` sent on calls to this upstream. */
  readonly authority: string;
  /**
   * Starts a stream on a usable connection to a usable endpoint. Throws when
   * there is none; the caller turns that into `unavailable`.
   */
  request(headers: OutgoingHttpHeaders): UpstreamStream;
  /**
   * Present when calls that never reached an application may be sent
   * again; absent, every call has exactly one attempt.
   */
  readonly retry?: UpstreamRetry | undefined;
}

export interface Upstream extends CallTarget {
  /** Closes every connection: graceful (in-flight streams finish) unless forced. */
  close(force?: boolean): Promise<void>;
  /**
   * Its endpoints, connections and counters now (metrics, the admin
   * listener's /clusters); clusters have it, an Upstream of the caller's may not.
   */
  stats?(): ClusterStats;
}

/** What the retrying layer needs to send a call again, elsewhere. */
export interface UpstreamRetry {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** Takes one retry from the budget; each true is paired with one `release()`. */
  tryAcquire(): boolean;
  release(): void;
  /** Like `request`, on another endpoint than `failed` when there is one. */
  requestAvoiding(headers: OutgoingHttpHeaders, failed: UpstreamEndpoint): UpstreamStream;
}
