/**
 * JSON calls forwarded as application/grpc+json because the bridge has no
 * schema for their method. Most gRPC servers speak only protobuf and reject
 * them; the bridge says how to get transcoding in its own log, once per
 * cluster and method, never in the call's status: a proxy does not rewrite
 * an upstream's status, message or details.
 */
import type { CallEnd, CallHead, CallLayer, ResponseSink } from "../call.js";
import { Code, codeToString } from "../protocol/status.js";

/** Where a hint goes: the bridge's logger, at warn level. */
export type HintLog = (fields: Record<string, unknown>, message: string) => void;

/** Methods remembered per cluster; paths come from clients, so the set is bounded. */
const maxRemembered = 1024;

/** The hints of one cluster: which methods were already named in the log. */
export class PassthroughHints {
  private readonly hinted = new Set<string>();

  constructor(
    private readonly cluster: string,
    private readonly log: HintLog,
  ) {}

  /**
   * The sink to hand the upstream for a JSON call passed through: it
   * watches the call's end and changes nothing. `note` says why reflection
   * gave no schema, when it failed.
   */
  watch(head: CallHead, sink: ResponseSink, note?: string): ResponseSink {
    if (this.hinted.size >= maxRemembered || this.hinted.has(head.path)) return sink;
    return new HintWatcher(this, head.path, sink, note);
  }

  /** An upstream rejected a JSON call the way proto-only servers do. */
  rejected(path: string, code: Code, note: string | undefined): void {
    if (this.hinted.size >= maxRemembered || this.hinted.has(path)) return;
    this.hinted.add(path);
    this.log(
      { cluster: this.cluster, method: path, code: codeToString(code), reflectionError: note },
      "JSON call forwarded as application/grpc+json, which the upstream rejected: the bridge has no schema for this method." +
        " Give it one to transcode JSON to protobuf: a descriptor set (--descriptor-set FILE, option schema.descriptorSets)" +
        " or the upstream's server reflection (--reflection, option schema.reflection)",
    );
  }
}

/**
 * The layer for a cluster without a schema: JSON calls of Connect and
 * gRPC-Web clients are watched; everything else goes straight through
 * (native gRPC is passed through as the client sent it, whatever its codec).
 */
export function withPassthroughHints(hints: PassthroughHints): CallLayer {
  return (next) => (head, sink) => next(head, head.codec === "json" && head.protocol !== "grpc" ? hints.watch(head, sink) : sink);
}

class HintWatcher implements ResponseSink {
  constructor(
    private readonly hints: PassthroughHints,
    private readonly path: string,
    private readonly inner: ResponseSink,
    private readonly note: string | undefined,
  ) {}

  onHeaders(headers: Parameters<ResponseSink["onHeaders"]>[0], encoding: string | undefined): void {
    this.inner.onHeaders(headers, encoding);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    return this.inner.onData(chunk, resume);
  }

  onEnd(end: CallEnd): void {
    const code = end.error?.code;
    // A procedure the upstream does not know is not a codec problem.
    if ((code === Code.Internal || code === Code.Unknown || code === Code.Unimplemented) && !end.unknownProcedure) {
      this.hints.rejected(this.path, code, this.note);
    }
    this.inner.onEnd(end);
  }
}
