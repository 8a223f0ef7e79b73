/**
 * Prometheus metrics (prom-client): a CallLayer that counts and times every
 * call, counters for what the bridge refuses before a call starts, and
 * collectors that read the clusters' own counters at scrape time. Built only
 * when metrics are on; when they are off, nothing here is in the call path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CallEnd, CallHandle, CallHead, CallLayer, ClientProtocolName, ResponseSink, StartCall } from "../call.js";
import type { ConnectError } from "../protocol/status.js";
import { codeToString } from "../protocol/status.js";
import { FrameScanner } from "../protocol/envelope.js";
import type { Upstream } from "../upstream/upstream.js";
import type { ClusterStats } from "../upstream/stats.js";
import { endpointStates } from "../upstream/stats.js";
import { CallSeries, MethodLabels, SizeSeries, type MethodEntry, type SeriesSink } from "./method-labels.js";

/** What the metrics are built from: the `metrics` options, resolved. */
export interface MetricsSettings {
  /** Where the metrics are registered: the host's own, or undefined for a fresh Registry. */
  readonly registry: Registry | undefined;
  /** Also register prom-client's process metrics (CPU, memory, event loop, GC). */
  readonly processMetrics: boolean;
  /** Distinct service/method label pairs before further methods are labelled "other". */
  readonly maxMethods: number;
}

/** Why the bridge answered a request without starting a call. */
export type RefusalReason =
  /** The path is no `/package.Service/Method`. */
  | "unknown_path"
  /** Server reflection, which is not passed through. */
  | "reflection"
  /** No route matched. */
  | "unrouted"
  /** A `deny` route matched. */
  | "denied"
  /** Wrong verb, a Content-Type no protocol takes, a codec not allowed, gRPC over HTTP/1.1. */
  | "protocol"
  /** An error Fastify raised before the bridge's handler ran (unparseable Content-Type, ...). */
  | "error";

/** Latency buckets in seconds: sub-millisecond proxying up to minute-long streams. */
const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

const callLabels = ["protocol", "service", "method"] as const;
type CallLabel = (typeof callLabels)[number];

/**
 * The bridge's metrics on one registry. One bridge per registry: the names
 * are fixed, and prom-client refuses a second metric of the same name.
 */
export class BridgeMetrics implements SeriesSink {
  readonly registry: Registry;
  readonly methods: MethodLabels;
  private readonly duration: Histogram<CallLabel | "code">;
  private readonly refusals: Counter<"reason" | "protocol">;
  /** Every series calls have counted into, read at scrape time. */
  private readonly calls: CallSeries[] = [];
  private readonly sizes: SizeSeries[] = [];
  private readonly upstreams: Upstream[] = [];

  constructor(settings: MetricsSettings) {
    const registry = settings.registry ?? new Registry();
    this.registry = registry;
    this.methods = new MethodLabels(settings.maxMethods);
    const registers = [registry];
    for (const name of metricNames) {
      if (registry.getSingleMetric(name) !== undefined) {
        throw new Error(`connect-grpc-bridge: metric ${name} is already registered in the registry given as metrics.registry: one bridge per registry (merge registries with Registry.merge)`);
      }
    }
    const calls = this.calls;
    const sizes = this.sizes;
    new Counter({
      name: "grpc_bridge_rpc_handled_total",
      help: "Calls that ended, by client protocol, service, method and gRPC status code.",
      labelNames: [...callLabels, "code"],
      registers,
      collect() {
        this.reset();
        for (const series of calls) this.labels(...series.labels).inc(series.handled);
      },
    });
    this.duration = new Histogram({
      name: "grpc_bridge_rpc_duration_seconds",
      help: "Time from the start of a call to its end (status sent), in seconds.",
      labelNames: [...callLabels, "code"],
      buckets: durationBuckets,
      registers,
    });
    new Gauge({
      name: "grpc_bridge_rpc_in_flight",
      help: "Calls started and not ended yet.",
      labelNames: callLabels,
      registers,
      collect() {
        this.reset();
        for (const series of sizes) this.labels(...series.labels).set(series.inFlight);
      },
    });
    const sizeCounter = (name: string, help: string, value: (series: SizeSeries) => number) =>
      new Counter({
        name,
        help,
        labelNames: callLabels,
        registers,
        collect() {
          this.reset();
          for (const series of sizes) this.labels(...series.labels).inc(value(series));
        },
      });
    sizeCounter("grpc_bridge_rpc_request_messages_total", "Request messages sent to upstreams.", (s) => s.requestMessages);
    sizeCounter("grpc_bridge_rpc_request_bytes_total", "Request bytes sent to upstreams (gRPC frames, 5-byte prefixes included).", (s) => s.requestBytes);
    sizeCounter("grpc_bridge_rpc_response_messages_total", "Response messages received from upstreams.", (s) => s.responseMessages);
    sizeCounter("grpc_bridge_rpc_response_bytes_total", "Response bytes received from upstreams (gRPC frames, 5-byte prefixes included).", (s) => s.responseBytes);
    this.refusals = new Counter({
      name: "grpc_bridge_refusals_total",
      help: "Requests answered without starting a call, by reason and client protocol (none: no protocol recognised).",
      labelNames: ["reason", "protocol"],
      registers,
    });
    this.upstreamMetrics(registers);
    // A host registry that has the process metrics already keeps its own (a second set would throw).
    if (settings.processMetrics && registry.getSingleMetric("process_cpu_user_seconds_total") === undefined) {
      collectDefaultMetrics({ register: registry });
      // Gauges named like counters, which promtool's lint rejects; each is
      // the sum of the per-type gauge of the same name without "_total".
      for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
        registry.removeSingleMetric(name);
      }
    }
  }

  /** The CallLayer that measures every call passing through it. */
  layer(): CallLayer {
    return (next) => (head, sink) => new MeasuredCall(this, next, head, sink);
  }

  callSeries(labels: CallSeries["labels"]): CallSeries {
    const series = new CallSeries(labels, this.duration.labels(...labels));
    this.calls.push(series);
    return series;
  }

  sizeSeries(labels: SizeSeries["labels"]): SizeSeries {
    const series = new SizeSeries(labels);
    this.sizes.push(series);
    return series;
  }

  /** Counts a request answered without a call. */
  refused(reason: RefusalReason, protocol: ClientProtocolName | undefined): void {
    this.refusals.labels(reason, protocol ?? "none").inc();
  }

  /** Reports `upstream`'s endpoints and counters at each scrape (if it keeps stats). */
  watch(upstream: Upstream): void {
    if (upstream.stats !== undefined) this.upstreams.push(upstream);
  }

  /** Gauges and counters of the watched clusters, read from their stats when scraped. */
  private upstreamMetrics(registers: Registry[]): void {
    const snapshot = (): ClusterStats[] => this.upstreams.map((upstream) => upstream.stats!());
    new Gauge({
      name: "grpc_bridge_upstream_endpoints",
      help: "Endpoints of each cluster by state (usable, draining, unhealthy, ejected, backing_off).",
      labelNames: ["cluster", "state"],
      registers,
      collect() {
        this.reset();
        for (const cluster of snapshot()) {
          const counts = new Map<string, number>(endpointStates.map((state) => [state, 0]));
          for (const endpoint of cluster.endpoints) counts.set(endpoint.state, counts.get(endpoint.state)! + 1);
          for (const [state, count] of counts) this.labels(cluster.name, state).set(count);
        }
      },
    });
    type EndpointValue = (endpoint: ClusterStats["endpoints"][number]) => number;
    const eachEndpoint = (apply: (cluster: string, endpoint: string, value: number) => void, value: EndpointValue) => {
      for (const cluster of snapshot()) for (const endpoint of cluster.endpoints) apply(cluster.name, endpoint.address, value(endpoint));
    };
    const perEndpoint = (name: string, help: string, kind: "gauge" | "counter", value: EndpointValue) => {
      const labelNames = ["cluster", "endpoint"] as const;
      if (kind === "gauge") {
        new Gauge({
          name, help, labelNames, registers,
          collect() {
            this.reset();
            eachEndpoint((cluster, endpoint, n) => this.labels(cluster, endpoint).set(n), value);
          },
        });
      } else {
        new Counter({
          name, help, labelNames, registers,
          collect() {
            this.reset();
            eachEndpoint((cluster, endpoint, n) => this.labels(cluster, endpoint).inc(n), value);
          },
        });
      }
    };
    perEndpoint("grpc_bridge_upstream_connections", "Open HTTP/2 connections per endpoint.", "gauge", (e) => e.connections);
    perEndpoint("grpc_bridge_upstream_streams", "HTTP/2 streams in flight per endpoint (calls and health checks).", "gauge", (e) => e.streams);
    perEndpoint("grpc_bridge_upstream_connect_failures_total", "Connections to an endpoint that failed.", "counter", (e) => e.connectFailures);
    perEndpoint("grpc_bridge_upstream_goaways_total", "GOAWAY frames received from an endpoint.", "counter", (e) => e.goaways);
    new Counter({
      name: "grpc_bridge_upstream_health_checks_total",
      help: "Health checks of each endpoint by result (pass: SERVING; fail: anything else).",
      labelNames: ["cluster", "endpoint", "result"],
      registers,
      collect() {
        this.reset();
        for (const cluster of snapshot()) {
          for (const endpoint of cluster.endpoints) {
            this.labels(cluster.name, endpoint.address, "pass").inc(endpoint.healthChecksPassed);
            this.labels(cluster.name, endpoint.address, "fail").inc(endpoint.healthChecksFailed);
          }
        }
      },
    });
    const perCluster = (name: string, help: string, value: (cluster: ClusterStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: ["cluster"],
        registers,
        collect() {
          this.reset();
          for (const cluster of snapshot()) this.labels(cluster.name).inc(value(cluster));
        },
      });
    perCluster("grpc_bridge_upstream_retries_total", "Attempts sent again because the one before never reached the application.", (c) => c.retries);
    perCluster("grpc_bridge_upstream_retry_budget_refusals_total", "Retries the cluster's retry budget refused.", (c) => c.retryBudgetRefusals);
  }
}

/** Every name BridgeMetrics registers (not the process metrics). */
const metricNames = [
  "grpc_bridge_rpc_handled_total",
  "grpc_bridge_rpc_duration_seconds",
  "grpc_bridge_rpc_in_flight",
  "grpc_bridge_rpc_request_messages_total",
  "grpc_bridge_rpc_request_bytes_total",
  "grpc_bridge_rpc_response_messages_total",
  "grpc_bridge_rpc_response_bytes_total",
  "grpc_bridge_refusals_total",
  "grpc_bridge_upstream_endpoints",
  "grpc_bridge_upstream_connections",
  "grpc_bridge_upstream_streams",
  "grpc_bridge_upstream_connect_failures_total",
  "grpc_bridge_upstream_goaways_total",
  "grpc_bridge_upstream_health_checks_total",
  "grpc_bridge_upstream_retries_total",
  "grpc_bridge_upstream_retry_budget_refusals_total",
];

const countEverything = (): undefined => undefined;

/**
 * One call, measured: the handle the adapter writes to and the sink the
 * layer beneath answers, passing everything on unchanged. Counts are kept
 * in fields and reach the metrics once, when the call ends, labelled by
 * what the call showed by then (see MethodLabels).
 */
class MeasuredCall implements CallHandle, ResponseSink {
  private readonly call: CallHandle;
  private readonly startedAt = performance.now();
  private readonly entry: MethodEntry;
  private requestBytes = 0;
  /** Whole frames handed to end() of a unary call, which are never scanned. */
  private requestMessages = 0;
  /** Frame boundaries of streamed request bytes (written in arbitrary cuts); made at the first write. */
  private scanner: FrameScanner<undefined> | undefined;
  private responseBytes = 0;

  constructor(
    private readonly metrics: BridgeMetrics,
    next: StartCall,
    private readonly head: CallHead,
    private readonly sink: ResponseSink,
  ) {
    this.entry = metrics.methods.atStart(head.path);
    const started = this.entry.perProtocol(metrics, head.protocol);
    started.inFlight++;
    try {
      this.call = next(head, this);
    } catch (error) {
      // No call, so no onEnd: the gauge must not keep it.
      started.inFlight--;
      throw error;
    }
  }

  write(chunk: Uint8Array): boolean {
    this.requestBytes += chunk.byteLength;
    (this.scanner ??= new FrameScanner<undefined>(countEverything)).scan(chunk);
    return this.call.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.call.onDrain(listener);
  }

  end(chunk?: Uint8Array): void {
    if (chunk !== undefined) {
      this.requestBytes += chunk.byteLength;
      // A unary call's end() carries its one whole frame: no need to scan it.
      if (this.scanner === undefined && this.head.unary) this.requestMessages++;
      else (this.scanner ??= new FrameScanner<undefined>(countEverything)).scan(chunk);
    }
    this.call.end(chunk);
  }

  cancel(error: ConnectError): void {
    this.call.cancel(error);
  }

  onHeaders(headers: Parameters<ResponseSink["onHeaders"]>[0], encoding: string | undefined): void {
    this.sink.onHeaders(headers, encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    this.responseBytes += chunk.byteLength;
    return this.sink.onData(chunk, resume);
  }

  onEnd(end: CallEnd): void {
    const { metrics, head } = this;
    const protocol = head.protocol;
    this.entry.perProtocol(metrics, protocol).inFlight--;
    const entry = metrics.methods.atEnd(head.path, end);
    const code = end.error === undefined ? "ok" : codeToString(end.error.code);
    const ended = entry.ended(metrics, protocol, code);
    ended.handled++;
    ended.duration.observe((performance.now() - this.startedAt) / 1000);
    const sizes = entry.perProtocol(metrics, protocol);
    sizes.requestMessages += this.requestMessages + (this.scanner?.frames ?? 0);
    sizes.requestBytes += this.requestBytes;
    sizes.responseMessages += end.messages;
    sizes.responseBytes += this.responseBytes;
    this.sink.onEnd(end);
  }
}
