/**
 * The protocol-neutral call every inbound adapter hands to the upstream:
 * what to call, and where the response goes. Adding a client protocol means
 * writing an adapter that fills a CallHead and implements ResponseSink.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { ConnectError } from "./protocol/status.js";

export interface CallHead {
  /** `/package.Service/Method`. */
  path: string;
  /** Codec name of the messages: "proto", "json", ... */
  codec: string;
  /** Application metadata for the upstream request. */
  metadata: OutgoingHttpHeaders;
  /** Deadline relative to now; enforced by the bridge as well. */
  timeoutMs?: number;
  /** Coding of request messages flagged as compressed. */
  requestEncoding?: string;
  /** Codings the client accepts for response messages, comma separated. */
  acceptEncoding?: string;
  /**
   * Codings the client reads, in its order of preference (a client that
   * names none reads the one it sent). Undefined for native gRPC, which is
   * passed through and never converted.
   */
  clientAccepts?: readonly string[];
}

export interface CallEnd {
  /** Undefined when the call succeeded (grpc-status 0). */
  error?: ConnectError;
  /** Trailing metadata, or the single header block of a trailers-only response. */
  trailers?: IncomingHttpHeaders;
  /** The status arrived in the only header block (no response headers were sent). */
  trailersOnly: boolean;
  /** Number of response message headers received. */
  messages: number;
  /**
   * The response bytes passed to onData stop inside a message (truncated or
   * rejected frame): a streaming adapter cannot append a well-formed end.
   */
  midMessage: boolean;
  /**
   * The upstream does not know the procedure: HTTP 404, or `unimplemented`
   * in a trailers-only response. Connect answers that with HTTP 404 rather
   * than the 501 its code table gives `unimplemented`.
   */
  unknownProcedure: boolean;
  /** The upstream reset the stream with this HTTP/2 error code (not NO_ERROR). */
  resetCode?: number;
}

export interface ResponseSink {
  /** Response headers arrived; not called for trailers-only responses. */
  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void;
  /**
   * Enveloped response bytes, cut at arbitrary points. Already checked:
   * well-formed flags and sizes. Return false to ask for backpressure: the
   * upstream stream is then paused until the sink calls `resume`.
   */
  onData(chunk: Buffer, resume: () => void): boolean;
  /** The call is over, successfully or not. Called exactly once. */
  onEnd(end: CallEnd): void;
}

/** The end of a call the bridge refused before reaching the upstream. */
export function refusedCall(error: ConnectError): CallEnd {
  return { error, trailersOnly: false, messages: 0, midMessage: false, unknownProcedure: false };
}
