/**
 * The protocol-neutral call: the one seam between inbound adapters and
 * wherever calls go. An adapter fills a CallHead, implements ResponseSink,
 * and calls a StartCall; it gets a CallHandle to send the request through.
 * What stands between (transcoding, coding conversion, retries, the
 * upstream attempt; later metrics, tracing, access logs) is a CallLayer, and
 * an adapter never knows which layers are there.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { ConnectError } from "./protocol/status.js";

/** The client protocol a call arrived in: what layers may label or check by. */
export type ClientProtocolName = "connect" | "grpc-web" | "grpc" | "rest";

export interface CallHead {
  /** Which protocol the client speaks. */
  protocol: ClientProtocolName;
  /**
   * A Connect unary call (POST or GET): exactly one whole request message,
   * handed to `CallHandle.end`, and exactly one response message expected.
   */
  unary: boolean;
  /** A Connect unary GET (the message came in the query). */
  get: boolean;
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

/**
 * The request half of a call in flight. `write` and `end` take enveloped
 * frames (5-byte prefix and message), the same bytes in every protocol.
 */
export interface CallHandle {
  /** Forwards request bytes; false means wait for `onDrain` before writing more. */
  write(chunk: Uint8Array): boolean;
  /** Runs `listener` once the call can take more request bytes. */
  onDrain(listener: () => void): void;
  /** Half-closes the request; a unary call hands its whole frame here. */
  end(chunk?: Uint8Array): void;
  /** Ends the call with `error` (the upstream stream, if any, is reset with CANCEL). */
  cancel(error: ConnectError): void;
}

/**
 * Starts a call: the sink gets exactly one `onEnd`, whatever happens,
 * including a refusal before anything reached an upstream.
 */
export type StartCall = (head: CallHead, sink: ResponseSink) => CallHandle;

/** One layer of the call pipeline: wraps the StartCall beneath it. */
export type CallLayer = (next: StartCall) => StartCall;

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
  /**
   * A layer refused the call in a way Connect unary answers with an HTTP
   * status of its own (GET on a method with side effects: 405, Allow: POST).
   */
  http?: { status: number; headers?: OutgoingHttpHeaders };
  /** `host:port` of the endpoint the last attempt ran on; undefined when no stream was opened. */
  endpoint: string | undefined;
  /** Attempts the call took: 1 unless it was retried, 0 when it never reached an upstream. */
  attempts: number;
  /**
   * One entry per attempt that was sent again (for trace events and logs);
   * undefined, not empty, when the call was never retried, so an ordinary
   * call allocates nothing for it.
   */
  retries: CallRetry[] | undefined;
}

/** An attempt that failed before reaching the application and was sent again. */
export interface CallRetry {
  /** When the failed attempt ended (Date.now()). */
  readonly atMs: number;
  /** The endpoint it ran on. */
  readonly endpoint: string;
  /** Why it failed. */
  readonly error: ConnectError | undefined;
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
  return { error, trailersOnly: false, messages: 0, midMessage: false, unknownProcedure: false, endpoint: undefined, attempts: 0, retries: undefined };
}
