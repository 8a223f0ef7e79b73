/**
 * Which service/method labels a call gets, with bounded cardinality. The
 * path comes from the client, so it becomes a label only once it is known
 * to name a real method, without a schema to ask: when an upstream's gRPC
 * server answered a call on it (a grpc-status arrived) with anything but
 * "unknown procedure" (HTTP 404, or `unimplemented`). Until then, and for
 * calls that never got an answer (refused by the bridge, no endpoint,
 * connection lost), it is service="unknown", method="unknown". At most
 * `maxMethods` paths are learnt; later ones are "other", so an upstream
 * that answers every path (an auth proxy saying `unauthenticated`) cannot
 * grow the label set without end either.
 *
 * Each entry caches its prom-client children per protocol and code, so a
 * call's end costs a Map lookup, not a label hash.
 */
import type { Counter, Gauge, Histogram } from "prom-client";
import type { CallEnd } from "../call.js";
import { Code } from "../protocol/status.js";
import type { BridgeMetrics } from "./metrics.js";

/** The children a call's end updates for one protocol and code. */
export interface EndedChildren {
  readonly handled: Counter.Internal;
  readonly duration: Histogram.Internal<string>;
}

/** The size counters of one protocol. */
export interface SizeChildren {
  readonly requestMessages: Counter.Internal;
  readonly requestBytes: Counter.Internal;
  readonly responseMessages: Counter.Internal;
  readonly responseBytes: Counter.Internal;
}

/** One service/method label pair and its cached children. */
export class MethodEntry {
  private readonly endedChildren = new Map<string, EndedChildren>();
  private readonly sizeChildren = new Map<string, SizeChildren>();
  private readonly inFlightChildren = new Map<string, Gauge.Internal<string>>();

  constructor(
    readonly service: string,
    readonly method: string,
  ) {}

  inFlight(metrics: BridgeMetrics, protocol: string): Gauge.Internal<string> {
    let child = this.inFlightChildren.get(protocol);
    if (child === undefined) {
      child = metrics.inFlight.labels(protocol, this.service, this.method);
      this.inFlightChildren.set(protocol, child);
    }
    return child;
  }

  ended(metrics: BridgeMetrics, protocol: string, code: string): EndedChildren {
    const key = protocol + " " + code;
    let children = this.endedChildren.get(key);
    if (children === undefined) {
      children = {
        handled: metrics.handled.labels(protocol, this.service, this.method, code),
        duration: metrics.duration.labels(protocol, this.service, this.method, code),
      };
      this.endedChildren.set(key, children);
    }
    return children;
  }

  sizes(metrics: BridgeMetrics, protocol: string): SizeChildren {
    let children = this.sizeChildren.get(protocol);
    if (children === undefined) {
      const labels = [protocol, this.service, this.method] as const;
      children = {
        requestMessages: metrics.requestMessages.labels(...labels),
        requestBytes: metrics.requestBytes.labels(...labels),
        responseMessages: metrics.responseMessages.labels(...labels),
        responseBytes: metrics.responseBytes.labels(...labels),
      };
      this.sizeChildren.set(protocol, children);
    }
    return children;
  }
}

export class MethodLabels {
  /** The label of paths not known to name a method. */
  readonly unknown = new MethodEntry("unknown", "unknown");
  /** The label of methods past `maxMethods`. */
  readonly other = new MethodEntry("other", "other");
  private readonly known = new Map<string, MethodEntry>();

  constructor(private readonly maxMethods: number) {}

  /** The entry of a call starting on `path` (its in-flight gauge): known paths only. */
  atStart(path: string): MethodEntry {
    return this.known.get(path) ?? this.unknown;
  }

  /** The entry of a call that ended: learns `path` when the upstream's answer shows the method exists. */
  atEnd(path: string, end: CallEnd): MethodEntry {
    const entry = this.known.get(path);
    if (entry !== undefined) return entry;
    // An answer of the bridge's own (no grpc-status from upstream) proves nothing about the path.
    const answered = end.trailers?.["grpc-status"] !== undefined;
    if (!answered || end.unknownProcedure || end.error?.code === Code.Unimplemented) return this.unknown;
    if (this.known.size >= this.maxMethods) return this.other;
    const slash = path.lastIndexOf("/");
    if (slash <= 0) return this.unknown;
    const learnt = new MethodEntry(path.slice(1, slash), path.slice(slash + 1));
    this.known.set(path, learnt);
    return learnt;
  }

  /** How many paths have their own labels. */
  get size(): number {
    return this.known.size;
  }
}
