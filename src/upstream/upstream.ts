/**
 * The seam between the inbound adapters and wherever calls go. A call needs
 * one thing from an upstream: an HTTP/2 stream to an endpoint that can serve
 * it. Pools, balancing, health and retries live behind this interface.
 */
import type * as http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";

export interface Upstream {
  /** Name used in logs and errors (the cluster name, or the address). */
  readonly name: string;
  /** `:authority` sent on calls to this upstream. */
  readonly authority: string;
  /**
   * Starts a stream on a usable connection to a usable endpoint. Throws when
   * there is none; the caller turns that into `unavailable`.
   */
  request(headers: OutgoingHttpHeaders): http2.ClientHttp2Stream;
  /** Closes every connection: graceful (in-flight streams finish) unless forced. */
  close(force?: boolean): Promise<void>;
  /**
   * Present when the upstream can retry calls that never reached an
   * application (a cluster); a single address has nowhere else to go.
   */
  readonly retry?: UpstreamRetry | undefined;
}

/** What GrpcCall needs to send a call again, elsewhere. */
export interface UpstreamRetry {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** Takes one retry from the budget; each true is paired with one `release()`. */
  tryAcquire(): boolean;
  release(): void;
  /** Like `request`, on another endpoint than the one `failed` ran on when there is one. */
  requestAvoiding(headers: OutgoingHttpHeaders, failed: http2.Http2Session | undefined): http2.ClientHttp2Stream;
}
