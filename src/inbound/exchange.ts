/**
 * One HTTP request/response pair as an inbound adapter sees it, and what the
 * adapters share: where calls go, the options, and how a call gets
 * cancelled when the client goes away.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CallHandle, StartCall } from "../call.js";
import { Code, ConnectError } from "../protocol/status.js";

export interface BridgeContext {
  /**
   * Where calls go: the pipeline of layers over the upstream (transcoding,
   * when a schema is configured; the upstream attempt). Adapters never
   * learn which layers are there.
   */
  startCall: StartCall;
  options: AdapterOptions;
}

/**
 * The options adapters read. Declared here, not imported from options.ts
 * (whose ResolvedOptions has all of them), so that inbound/ depends on the
 * seam and protocol/ only.
 */
export interface AdapterOptions {
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  readonly maxHeaderEntries: number;
  readonly unaryBodyTimeoutMs: number;
  readonly codecs: readonly string[];
  readonly acceptCompression: readonly string[];
  readonly upstreamCompression: readonly string[];
  readonly compressMinBytes: number;
  readonly requireConnectProtocolHeader: boolean;
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers the host app's hooks set on the reply (CORS, request ids, ...). */
  baseHeaders: OutgoingHttpHeaders;
  /** `/package.Service/Method`, without any plugin prefix. */
  path: string;
  /** A cross-origin request the CORS policy serves: expose the metadata headers. */
  cors: boolean;
}

/**
 * The exchange behind a Fastify request. The reply's headers (set by the
 * host's hooks) are taken now, since the adapters write the raw response.
 */
export function exchangeFor(request: FastifyRequest, reply: FastifyReply, path = "", cors = false): Exchange {
  return {
    req: request.raw,
    res: reply.raw,
    baseHeaders: reply.getHeaders() as OutgoingHttpHeaders,
    path,
    cors,
  };
}

/**
 * Cancels the upstream call when the client goes away before the response is
 * complete. Watches the response, not the request: IncomingMessage emits
 * 'close' as soon as the body is read, which says nothing about the client.
 * Asks whether *we* ended the response (writableEnded), not whether it
 * finished: HTTP/2's compat response reports a reset stream as finished.
 *
 * Over HTTP/1.1 a client can only go away by closing its connection, so the
 * watch is one 'close' listener per connection, installed at its first call,
 * and a slot on the socket naming the response in flight: adding and
 * removing a listener on every response cost ~4% of a unary call's
 * instructions. A second call in flight on the same connection (pipelining)
 * and HTTP/2 streams (which a client resets one by one) take a listener of
 * their own. The adapter calls `disconnectWatchDone` when the call ends, so
 * an idle keep-alive connection does not hold on to its last call.
 */
export function cancelOnDisconnect(exchange: Exchange, call: CallHandle): void {
  // One listener function for every call; the call rides on the response.
  const res = exchange.res as WatchedResponse;
  res[callOf] = call;
  const socket = exchange.req.socket as WatchedSocket | null;
  if (exchange.req.httpVersionMajor === 1 && socket !== null) {
    const current = socket[inFlight];
    if (current === undefined) socket.on("close", cancelInFlight);
    // A slot whose response we ended is free even when its adapter did not say so.
    if (current == null || current.writableEnded) {
      socket[inFlight] = res;
      return;
    }
  }
  res.once("close", cancelIfUnfinished);
}

/** The call of this exchange ended: a disconnect has nothing left to cancel. */
export function disconnectWatchDone(exchange: Exchange): void {
  const socket = exchange.req.socket as WatchedSocket | null;
  if (socket !== null && socket[inFlight] === exchange.res) socket[inFlight] = null;
}

/** Where the shared 'close' listener finds the response's call. */
const callOf = Symbol("call");
type WatchedResponse = ServerResponse & { [callOf]: CallHandle };
/** The HTTP/1.1 response whose call is in flight; null between calls, undefined before the first. */
const inFlight = Symbol("inFlight");
type WatchedSocket = Socket & { [inFlight]?: WatchedResponse | null };

function cancelIfUnfinished(this: WatchedResponse): void {
  if (!this.writableEnded) this[callOf].cancel(new ConnectError("client disconnected", Code.Canceled));
}

function cancelInFlight(this: WatchedSocket): void {
  const res = this[inFlight];
  if (res != null) cancelIfUnfinished.call(res);
}

/** True once the response can no longer be written (client gone or done). */
export function responseClosed(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed;
}

/**
 * Writes a chunk of a streaming response; when the client's socket is full,
 * returns false and calls `resume` once it drains (the upstream is paused
 * meanwhile, so HTTP/2 flow control slows the upstream down).
 */
export function writeChunk(res: ServerResponse, chunk: Buffer | string, resume: () => void): boolean {
  if (responseClosed(res)) return true;
  // An upstream read delivers many small messages in one tick; over HTTP/1.1
  // each write would be its own writev syscall (half the CPU of a stream of
  // 1 KiB messages went there). Corked until the end of the tick, they leave
  // in one.
  corkThisTurn(res);
  if (res.write(chunk)) return true;
  res.once("drain", resume);
  return false;
}

/**
 * Holds the response's writes until this turn of the event loop has run its
 * I/O callbacks, so that what the upstream delivered in one read (a response
 * head, its messages, and for a short call its trailers and end: the
 * upstream stream's 'end' comes a few ticks after its last data) leaves in
 * one syscall. `res.end()` flushes whatever is corked at once. HTTP/2's
 * compat response (Http2ServerResponse) corks its stream the same way on
 * Node 22 and 24; whether that helps an HTTP/2 front door, whose session
 * batches frames itself, has not been measured.
 */
export function corkThisTurn(res: ServerResponse): void {
  if (res.writableCorked === 0) {
    res.cork();
    setImmediate(uncork, res);
  }
}

function uncork(res: ServerResponse): void {
  res.uncork();
}

/** Response headers a browser may always read (the CORS-safelisted ones). */
const safelisted = new Set([
  "cache-control",
  "content-language",
  "content-length",
  "content-type",
  "expires",
  "last-modified",
  "pragma",
]);

/**
 * Lets a cross-origin page read the metadata of this response: the names of
 * the headers written, as Access-Control-Expose-Headers. Metadata names are
 * only known per call, so a static list in the CORS options cannot cover them.
 */
export function exposeHeaders(exchange: Exchange, headers: OutgoingHttpHeaders): void {
  if (!exchange.cors) return;
  const names: string[] = [];
  const configured = headers["access-control-expose-headers"];
  if (configured !== undefined) names.push(String(configured));
  for (const name in headers) {
    if (safelisted.has(name) || name.startsWith("access-control-") || name === "vary") continue;
    names.push(name);
  }
  if (names.length > 0) headers["access-control-expose-headers"] = names.join(", ");
}
