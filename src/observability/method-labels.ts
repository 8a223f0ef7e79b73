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
 * Each entry caches its series per protocol and code, so a call's end
 * costs a Map lookup and a few additions, not a label hash per metric.
 */
import type { Histogram } from "prom-client";
import type { CallEnd } from "../call.js";
import { Code } from "../protocol/status.js";

/**
 * The counts of one protocol/service/method/code: plain fields a call's end
 * adds to, read by the counters' collect() at scrape time (prom-client's
 * own inc() hashes the label set on every call). The histogram is the
 * prom-client child: buckets need its observe().
 */
export class CallSeries {
  handled = 0;
  constructor(
    readonly labels: readonly [protocol: string, service: string, method: string, code: string],
    readonly duration: Histogram.Internal<string>,
  ) {}
}

/** The counts of one protocol/service/method, whatever the code. */
export class SizeSeries {
  inFlight = 0;
  requestMessages = 0;
  requestBytes = 0;
  responseMessages = 0;
  responseBytes = 0;
  constructor(readonly labels: readonly [protocol: string, service: string, method: string]) {}
}

/** Where new series go, so the collectors find them. */
export interface SeriesSink {
  callSeries(labels: CallSeries["labels"]): CallSeries;
  sizeSeries(labels: SizeSeries["labels"]): SizeSeries;
}

/** One service/method label pair and its series, per protocol (and code). */
export class MethodEntry {
  private readonly calls = new Map<string, CallSeries>();
  private readonly sizes = new Map<string, SizeSeries>();

  constructor(
    readonly service: string,
    readonly method: string,
  ) {}

  ended(sink: SeriesSink, protocol: string, code: string): CallSeries {
    const key = protocol + " " + code;
    let series = this.calls.get(key);
    if (series === undefined) {
      series = sink.callSeries([protocol, this.service, this.method, code]);
      this.calls.set(key, series);
    }
    return series;
  }

  perProtocol(sink: SeriesSink, protocol: string): SizeSeries {
    let series = this.sizes.get(protocol);
    if (series === undefined) {
      series = sink.sizeSeries([protocol, this.service, this.method]);
      this.sizes.set(protocol, series);
    }
    return series;
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
