/**
 * What ties a bridged call to the HTTP request it came in, for tracing and
 * the access log: built in the plugin's dispatch only when either is on, so
 * with both off nothing here is in the request path at all.
 *
 * The layers of a cluster's pipeline are built once and see only the
 * CallHead; the request's own facts (the host's active context at dispatch,
 * the client's socket, when the response closed) are known here. Tracing
 * gets them through the active context the call is started in, the access
 * log by wrapping the sink and the handle.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyRequest } from "fastify";
import type { CallEnd, CallHandle, CallHead, ClientProtocolName, ResponseSink, StartCall } from "../call.js";
import type { ConnectError } from "../protocol/status.js";
import type { BridgeContext } from "../inbound/exchange.js";
import type { Tracing } from "./tracing.js";
import type { AccessLog, AccessRecord } from "./access-log.js";

/**
 * The request decoration under which a request routed to the bridge carries
 * its registration's observer (a getter on the route context's Request
 * prototype: nothing per request). Routing precedes every hook, so a host
 * hook that turns the call away with `rejectCall` finds it too.
 */
export const observerDecoration = "connectGrpcBridgeObserver";

/** The observer of the bridge `request` was routed to, if it observes. */
export function observerOf(request: FastifyRequest): RequestObserver | undefined {
  return (request as unknown as Record<string, RequestObserver | undefined>)[observerDecoration];
}

/**
 * `/package.Service/Method` as the client asked for it: the raw path
 * without the query and without the plugin's prefix (taken from the route,
 * "/rpc/*"), as the dispatch reads it.
 */
export function requestedPath(request: FastifyRequest): string {
  const url = request.raw.url ?? "";
  const query = url.indexOf("?");
  const route = request.routeOptions.url;
  const prefix = route !== undefined && route.endsWith("/*") ? route.length - 2 : 0;
  return url.slice(prefix, query < 0 ? url.length : query) || "/";
}

/** Starts observing requests; undefined when neither tracing nor the access log is on. */
export function requestObserver(accessLog: AccessLog | undefined, tracing: Tracing | undefined): RequestObserver | undefined {
  if (accessLog === undefined && tracing === undefined) return undefined;
  return new RequestObserver(accessLog, tracing);
}

export class RequestObserver {
  constructor(
    private readonly accessLog: AccessLog | undefined,
    private readonly tracing: Tracing | undefined,
  ) {}

  /**
   * Called as the bridge takes the request (in the Fastify handler, where a
   * host's tracing has its request span active).
   */
  begin(req: IncomingMessage, res: ServerResponse, path: string, protocol: ClientProtocolName | undefined): ObservedRequest {
    const tracing = this.tracing;
    return new ObservedRequest(this.accessLog, tracing, tracing?.parentOf(), req, res, path, protocol);
  }
}

/** One request under observation. */
export class ObservedRequest implements AccessRecord {
  readonly startedAt = performance.now();
  end: CallEnd | undefined = undefined;
  bytesIn = 0;
  bytesOut = 0;
  traceId: string | undefined = undefined;
  readonly client: string | undefined;
  private next: StartCall | undefined = undefined;
  /** A call was started and has not ended yet. */
  private callOpen = false;
  private responseClosed = false;

  constructor(
    private readonly accessLog: AccessLog | undefined,
    private readonly tracing: Tracing | undefined,
    /** The context the call's span takes its parent from; undefined when tracing is off. */
    private readonly parent: ReturnType<Tracing["parentOf"]> | undefined,
    private readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly path: string,
    readonly protocol: ClientProtocolName | undefined,
  ) {
    this.client = accessLog === undefined ? undefined : req.socket.remoteAddress;
    if (accessLog !== undefined) {
      res.once("close", () => {
        this.responseClosed = true;
        if (!this.callOpen) this.finish();
      });
    }
  }

  /** The request's refusal (unrouted, wrong verb or codec, ...), answered without a call. */
  refused(end: CallEnd): void {
    this.end = end;
  }

  /** `ctx` with a StartCall that observes this request's call. */
  context(ctx: BridgeContext): BridgeContext {
    this.next = ctx.startCall;
    return { startCall: this.startCall, options: ctx.options };
  }

  private readonly startCall = (head: CallHead, sink: ResponseSink): CallHandle => {
    const next = this.next!;
    const logged = this.accessLog !== undefined;
    if (logged) {
      this.callOpen = true;
      sink = new CountingSink(sink, this);
    }
    const { tracing, parent } = this;
    const call = tracing === undefined ? next(head, sink) : tracing.startIn(parent!, this.req, next, head, sink);
    if (tracing !== undefined) {
      // The tracing layer put its span's context there (00-<trace id>-<span id>-<flags>).
      const traceparent = head.metadata.traceparent;
      if (typeof traceparent === "string" && traceparent.length >= 35) this.traceId = traceparent.slice(3, 35);
    }
    return logged ? new CountingCall(call, this) : call;
  };

  /** @internal The call ended. */
  ended(end: CallEnd): void {
    this.end = end;
    this.callOpen = false;
    if (this.responseClosed) this.finish();
  }

  private finish(): void {
    this.accessLog!.write(this);
  }
}

/** Counts response bytes and takes the end, for the access log. */
class CountingSink implements ResponseSink {
  constructor(
    private readonly sink: ResponseSink,
    private readonly request: ObservedRequest,
  ) {}

  onHeaders(headers: Parameters<ResponseSink["onHeaders"]>[0], encoding: string | undefined): void {
    this.sink.onHeaders(headers, encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    this.request.bytesOut += chunk.byteLength;
    return this.sink.onData(chunk, resume);
  }

  onEnd(end: CallEnd): void {
    try {
      this.sink.onEnd(end);
    } finally {
      this.request.ended(end);
    }
  }
}

/** Counts request bytes, for the access log. */
class CountingCall implements CallHandle {
  constructor(
    private readonly call: CallHandle,
    private readonly request: ObservedRequest,
  ) {}

  write(chunk: Uint8Array): boolean {
    this.request.bytesIn += chunk.byteLength;
    return this.call.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.call.onDrain(listener);
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) this.request.bytesIn += chunk.byteLength;
    this.call.end(chunk);
  }

  cancel(error: ConnectError): void {
    this.call.cancel(error);
  }
}
