/**
 * OpenTelemetry tracing of bridged calls: a CallLayer that opens one SERVER
 * span per call, takes its parent from the host's active context or from the
 * client's W3C headers, hands the upstream the span's own context, and
 * records retries as span events. Only `@opentelemetry/api` and the W3C
 * propagators are loaded with it; the SDK and the OTLP exporter are imported
 * when the config asks the bridge to export spans itself.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import {
  context as otelContext,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { CallEnd, CallHead, CallLayer, ResponseSink, StartCall } from "../call.js";
import { Code } from "../protocol/status.js";

/** Name of the tracer (instrumentation scope) the bridge's spans come from. */
export const tracerName = "connect-grpc-bridge";

/** Span attributes the bridge sets beyond the RPC semantic conventions. */
export const bridgeAttributes = {
  clientProtocol: "connect_grpc_bridge.client_protocol",
  upstreamEndpoint: "connect_grpc_bridge.upstream.endpoint",
  attempts: "connect_grpc_bridge.attempts",
} as const;

/**
 * The HTTP request of the call being started: set by `startIn` for the
 * synchronous extent of `next(head, sink)`, read by the layer at its entry
 * (the metrics layer above it calls through synchronously). It is where the
 * client and the bridge's own address come from. Undefined when a StartCall
 * is used without the plugin (the bridge's own calls: health checks,
 * reflection). A slot, not a context value: a context per call was a
 * BaseContext (a Map copy and three closures) living as long as the call.
 */
let startingRequest: IncomingMessage | undefined;

/**
 * W3C Trace Context and Baggage, always: what the bridge reads from clients
 * and writes to upstreams does not depend on which propagators a host
 * registered globally (with no SDK, the global one does nothing).
 */
export const w3cPropagator: TextMapPropagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

/** The headers the propagator owns: the client's are replaced, never forwarded as they came. */
const propagationFields = w3cPropagator.fields();

const metadataGetter: TextMapGetter<OutgoingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.map(String) : String(value);
  },
};

const metadataSetter: TextMapSetter<OutgoingHttpHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * Codes that are a server-side failure, for which the gRPC semantic
 * conventions set a SERVER span's status to Error; the others (a client's
 * bad argument, not found, ...) leave it unset.
 */
const serverErrorCodes: ReadonlySet<Code> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

/**
 * The tracing layer: a SERVER span per call named `package.Service/Method`
 * with the RPC semantic-convention attributes. The parent is the active
 * context when it holds a span (a host's own tracing: the Fastify request's
 * span), else what the client's `traceparent` / `tracestate` / `baggage`
 * say. Those headers are replaced in the upstream request by the span's own
 * context, as Envoy does when it traces.
 */
export function withTracing(tracer: Tracer): CallLayer {
  return (next: StartCall): StartCall =>
    (head, sink) => {
      const req = startingRequest;
      const active = otelContext.active();
      const metadata = head.metadata;
      const parent = trace.getSpan(active) !== undefined ? active : w3cPropagator.extract(active, metadata, metadataGetter);
      const slash = head.path.indexOf("/", 1);
      const service = head.path.slice(1, slash);
      const method = head.path.slice(slash + 1);
      // What a sampler may decide by is given at the start; the rest only
      // to spans that record (none without an SDK).
      const attributes: Attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
      const span = tracer.startSpan(head.path.slice(1), { kind: SpanKind.SERVER, attributes }, parent);
      // Only when there: deleting a property that exists changes the object's shape.
      for (const field of propagationFields) if (metadata[field] !== undefined) delete metadata[field];
      // An invalid span (no SDK, no valid parent) has no context to inject:
      // the parent's own baggage is what goes out, without a context built for it.
      w3cPropagator.inject(isSpanContextValid(span.spanContext()) ? trace.setSpan(parent, span) : parent, metadata, metadataSetter);
      if (!span.isRecording()) return next(head, sink);
      span.setAttributes(peerAttributes(head, req));
      return next(head, new TracedSink(sink, span));
    };
}

function peerAttributes(head: CallHead, req: IncomingMessage | undefined): Attributes {
  const attributes: Attributes = { [bridgeAttributes.clientProtocol]: head.protocol };
  if (req !== undefined) {
    const authority = (req.headers[":authority"] as string | undefined) ?? req.headers.host;
    if (authority !== undefined) {
      const { host, port } = splitAuthority(authority);
      attributes["server.address"] = host;
      if (port !== undefined) attributes["server.port"] = port;
    }
    const socket = req.socket;
    if (socket.remoteAddress !== undefined) {
      attributes["client.address"] = socket.remoteAddress;
      attributes["network.peer.address"] = socket.remoteAddress;
    }
    if (socket.remotePort !== undefined) attributes["network.peer.port"] = socket.remotePort;
    attributes["network.protocol.name"] = "http";
    attributes["network.protocol.version"] = req.httpVersionMajor === 2 ? "2" : req.httpVersion;
  }
  return attributes;
}

function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (match === null) return { host: authority, port: undefined };
  return { host: match[1].replace(/^\[|\]$/g, ""), port: match[2] === undefined ? undefined : Number(match[2]) };
}

/** Ends the span with the call: status, upstream endpoint, one event per retry. */
class TracedSink implements ResponseSink {
  constructor(
    private readonly sink: ResponseSink,
    private readonly span: Span,
  ) {}

  onHeaders(headers: Parameters<ResponseSink["onHeaders"]>[0], encoding: string | undefined): void {
    this.sink.onHeaders(headers, encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    return this.sink.onData(chunk, resume);
  }

  onEnd(end: CallEnd): void {
    const span = this.span;
    try {
      endSpan(span, end);
    } finally {
      this.sink.onEnd(end);
    }
  }
}

function endSpan(span: Span, end: CallEnd): void {
  // 0 is gRPC's OK, which Connect's Code enum leaves out.
  const code: number = end.error === undefined ? 0 : end.error.code;
  span.setAttribute("rpc.grpc.status_code", code);
  if (end.endpoint !== undefined) span.setAttribute(bridgeAttributes.upstreamEndpoint, end.endpoint);
  span.setAttribute(bridgeAttributes.attempts, end.attempts);
  if (end.retries !== undefined) {
    for (const retry of end.retries) {
      const attributes: Attributes = { [bridgeAttributes.upstreamEndpoint]: retry.endpoint };
      if (retry.error !== undefined) {
        attributes["rpc.grpc.status_code"] = retry.error.code;
        attributes["exception.message"] = retry.error.rawMessage;
      }
      span.addEvent("retry", attributes, retry.atMs);
    }
  }
  if (end.error !== undefined && serverErrorCodes.has(end.error.code)) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: end.error.rawMessage });
  }
  span.end();
}

/** What `tracing` in the config or the plugin options says. */
export interface TracingSettings {
  readonly enabled: boolean;
  readonly serviceName: string;
  readonly sampleRatio: number;
  readonly exporter?: { readonly otlp: { readonly url: string; readonly headers: Readonly<Record<string, string>> } };
}

/**
 * A running tracer: the layer for `callsTo`, what to flush on close, and the
 * two context steps the plugin's request observer takes. The observer reaches
 * OpenTelemetry only through these, so `@opentelemetry/*` is loaded (by the
 * plugin's dynamic import of this module) only when tracing is configured.
 */
export interface Tracing {
  readonly layer: CallLayer;
  /** The active context where the bridge takes the request: the parent of the call's span. */
  parentOf(): Context;
  /** Runs `next(head, sink)` with `parent` as the active context and `req` as the call's request. */
  startIn(parent: Context, req: IncomingMessage, next: StartCall, head: CallHead, sink: ResponseSink): ReturnType<StartCall>;
  /** Flushes and stops the SDK the bridge started; nothing when the host owns the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing as configured. Without an exporter the global API is used:
 * a host that registered its own TracerProvider gets the spans, and with
 * none they cost next to nothing (non-recording spans, headers still
 * propagated). With an exporter the SDK is imported (only then) and a
 * provider of the bridge's own exports over OTLP/HTTP protobuf; it is not
 * registered globally (a host's own stays theirs), but an AsyncLocalStorage
 * context manager is installed when none is, since the plugin hands each
 * call its parent context through the active context.
 */
export async function startTracing(settings: TracingSettings): Promise<Tracing> {
  if (settings.exporter === undefined) {
    return { layer: withTracing(trace.getTracer(tracerName)), shutdown: async () => {}, parentOf, startIn };
  }
  const otlp = settings.exporter.otlp;
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/context-async-hooks"),
  ]);
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ "service.name": settings.serviceName }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(settings.sampleRatio) }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: otlp.url, headers: { ...otlp.headers } }) })],
  });
  const manager = new AsyncLocalStorageContextManager();
  const ownManager = otelContext.setGlobalContextManager(manager.enable());
  if (!ownManager) manager.disable();
  return {
    layer: withTracing(provider.getTracer(tracerName)),
    shutdown: async () => {
      await provider.shutdown();
      if (ownManager) otelContext.disable();
    },
    parentOf,
    startIn,
  };
}

function parentOf(): Context {
  return otelContext.active();
}

function startIn(parent: Context, req: IncomingMessage, next: StartCall, head: CallHead, sink: ResponseSink): ReturnType<StartCall> {
  const outer = startingRequest;
  startingRequest = req;
  try {
    return otelContext.with(parent, next, undefined, head, sink);
  } finally {
    startingRequest = outer;
  }
}
