/**
 * JSON <-> binary protobuf for calls whose client speaks JSON to a proto-only
 * upstream, with the schema's message descriptors (@bufbuild/protobuf's
 * canonical proto3 JSON mapping; `Any` resolved through the schema).
 *
 * A CallLayer, composed per cluster only when a schema is configured. Binary
 * calls pay one test and go straight to the layer beneath; JSON calls (and
 * Connect GETs, for the idempotency check) wait for the schema lookup, then
 * are transcoded, passed through as application/grpc+json, or refused with
 * an end of their own. The adapter's head and sink keep speaking the
 * client's codec; the call beneath gets a head that says proto, and a sink
 * in front of the adapter's turns binary responses into JSON.
 */
import type { IncomingHttpHeaders } from "node:http";
import { fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type DescMethod, type Registry } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { refusedCall, type CallEnd, type CallHandle, type CallHead, type CallLayer, type ResponseSink, type StartCall } from "../call.js";
import { decompress } from "../protocol/compression.js";
import { encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import type { Upstream } from "../upstream/upstream.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import type { BridgeSchema, MethodLookup } from "./schema.js";
import type { PassthroughHints } from "./passthrough-hint.js";

/**
 * Transcoding for the calls of one cluster: `upstream` is whose reflected
 * schema is asked (bound here, so a call carries no reference to it);
 * `hints` watches JSON calls passed through for lack of a schema.
 */
export function withTranscoding(
  schema: BridgeSchema,
  upstream: Upstream,
  hints: PassthroughHints,
  maxRequestBytes: number,
): CallLayer {
  const scope: Scope = { schema, upstream, hints, maxRequestBytes };
  return (next) => (head, sink) =>
    // Native gRPC is never transcoded; binary calls only need the schema for a GET's idempotency check.
    head.protocol === "grpc" || (head.codec !== "json" && !head.get) ? next(head, sink) : new TranscodingCall(scope, next, head, sink);
}

interface Scope {
  schema: BridgeSchema;
  upstream: Upstream;
  hints: PassthroughHints;
  maxRequestBytes: number;
}

/**
 * One call waiting for its schema lookup. Request bytes written meanwhile
 * are held (write answers false, so the adapter pauses its source) and
 * handed on once the call beneath exists; a call cancelled meanwhile ends
 * at once and never starts.
 */
class TranscodingCall implements CallHandle {
  private beneath: CallHandle | undefined;
  private done = false;
  private pending: Uint8Array[] = [];
  private ended = false;
  private lastChunk: Uint8Array | undefined;
  private drainListeners: (() => void)[] = [];
  /** A unary call decided before its request ended waits here. */
  private whenEnded: (() => void) | undefined;

  constructor(
    private readonly scope: Scope,
    private readonly next: StartCall,
    private readonly head: CallHead,
    private readonly sink: ResponseSink,
  ) {
    scope.schema.lookup(scope.upstream, head.path).then(
      (lookup) => this.decide(lookup),
      (error: Error) => this.refuse(refusedCall(new ConnectError(`schema lookup failed: ${error.message}`, Code.Internal))),
    ).catch((error: unknown) => {
      const failure = error instanceof ConnectError ? error : new ConnectError(`transcoding failed: ${String(error)}`, Code.Internal);
      if (this.beneath !== undefined) this.beneath.cancel(failure);
      else this.refuse(refusedCall(failure));
    });
  }

  write(chunk: Uint8Array): boolean {
    if (this.beneath !== undefined) return this.beneath.write(chunk);
    // Refused: the rest of the body is read and dropped, so the connection drains.
    if (this.done) return true;
    this.pending.push(chunk);
    return false;
  }

  onDrain(listener: () => void): void {
    if (this.beneath !== undefined) this.beneath.onDrain(listener);
    else this.drainListeners.push(listener);
  }

  end(chunk?: Uint8Array): void {
    if (this.beneath !== undefined) {
      this.beneath.end(chunk);
      return;
    }
    this.ended = true;
    this.lastChunk = chunk;
    this.whenEnded?.();
  }

  cancel(error: ConnectError): void {
    if (this.beneath !== undefined) {
      this.beneath.cancel(error);
      return;
    }
    this.refuse(refusedCall(error));
  }

  /** Fails a call that started: what the response transcoder calls on a message it cannot convert. */
  fail(error: ConnectError): void {
    this.beneath?.cancel(error);
  }

  private refuse(end: CallEnd): void {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.sink.onEnd(end);
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  private async decide(lookup: MethodLookup): Promise<void> {
    if (this.done) return; // cancelled while the schema was looked up
    const { head } = this;
    if (lookup.kind === "unknown-method") return this.refuse(unknownMethod(head.path));
    if (lookup.kind === "broken-file") {
      // Binary calls need no schema; JSON ones cannot be transcoded without the file.
      if (head.codec !== "json") return this.pass(head, this.sink);
      return this.refuse(refusedCall(new ConnectError(`cannot transcode ${head.path} to JSON: ${lookup.file.reason}`, Code.Internal)));
    }
    if (lookup.kind === "not-described") {
      return this.pass(head, head.codec === "json" ? this.scope.hints.watch(head, this.sink, lookup.note) : this.sink);
    }
    const { method, types } = lookup;
    if (head.unary) {
      if (method.methodKind !== "unary") {
        return this.refuse(
          refusedCall(
            new ConnectError(
              `${head.path} is a ${method.methodKind.replace("_", "-")} method: call it with the Connect streaming protocol (Content-Type: application/connect+${head.codec}) or gRPC-Web`,
              Code.Unimplemented,
            ),
          ),
        );
      }
      if (head.get && !this.scope.schema.allowGetForAllMethods && method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
        return this.refuse({
          ...refusedCall(
            new ConnectError(
              `${head.path} may have side effects (it is not declared idempotency_level = NO_SIDE_EFFECTS): call it with POST, not GET`,
              Code.Unknown,
            ),
          ),
          http: { status: 405, headers: { allow: "POST" } },
        });
      }
      if (head.codec !== "json") return this.pass(head, this.sink);
      return this.startUnary(method, types);
    }
    if (head.protocol === "connect" && method.methodKind === "unary") {
      return this.refuse(
        refusedCall(
          new ConnectError(`${head.path} is a unary method: call it with a Connect unary request (Content-Type: application/json)`, Code.Unimplemented),
        ),
      );
    }
    const beneath = this.next(upstreamHead(head), new TranscodingSink(this.sink, method, types, this));
    this.pass(undefined, undefined, new TranscodingWriter(beneath, method.input, types));
  }

  /** Unary: the whole request is here (or will be); decode it once. */
  private async startUnary(method: DescMethod, types: Registry): Promise<void> {
    if (!this.ended) await new Promise<void>((resolve) => (this.whenEnded = resolve));
    if (this.done) return;
    const chunk = this.lastChunk ?? new Uint8Array(envelopeHeaderLength);
    const frame = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let payload = frame.subarray(envelopeHeaderLength);
    if (frame[0] & flagCompressed) {
      payload = await decompress(this.head.requestEncoding!, payload, this.scope.maxRequestBytes, "request message", Code.InvalidArgument);
      if (this.done) return;
    }
    const binary = jsonToBinary(method.input, types, payload);
    this.beneath = this.next(upstreamHead(this.head), new TranscodingSink(this.sink, method, types, this));
    this.beneath.end(encodeEnvelope(0, binary));
  }

  /**
   * Hands the call on: to `next` with `head` and `sink`, or to `beneath`
   * when it is built already. Held request bytes go first, in order.
   */
  private pass(head: CallHead | undefined, sink: ResponseSink | undefined, beneath?: CallHandle): void {
    const call = beneath ?? this.next(head!, sink!);
    this.beneath = call;
    const pending = this.pending;
    this.pending = [];
    let ready = true;
    for (const chunk of pending) ready = call.write(chunk);
    if (this.ended) call.end(this.lastChunk);
    // The adapter paused when its first write was held: resume it now, or
    // once the call beneath drains what it was just handed.
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) {
      if (ready) listener();
      else call.onDrain(listener);
    }
  }
}

/** The head the upstream sees: binary messages, no compression either way (the bridge reads every message). */
function upstreamHead(head: CallHead): CallHead {
  return { ...head, codec: "proto", requestEncoding: undefined, acceptEncoding: undefined };
}

function unknownMethod(path: string): CallEnd {
  const service = path.slice(1, path.lastIndexOf("/"));
  return {
    ...refusedCall(new ConnectError(`${path} is not a method of ${service} in the bridge's schema`, Code.Unimplemented)),
    unknownProcedure: true,
  };
}

const jsonRead = (types: Registry) => ({ registry: types, ignoreUnknownFields: false });

function jsonToBinary(input: DescMessage, types: Registry, json: Uint8Array): Uint8Array {
  try {
    return toBinary(input, fromJsonString(input, Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString("utf8"), jsonRead(types)));
  } catch (error) {
    throw new ConnectError(`request is not a valid JSON ${input.typeName}: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

/** Request frames: JSON in, binary out, one whole message at a time. */
class TranscodingWriter implements CallHandle {
  private readonly frames = new FrameAssembler();

  constructor(
    private readonly call: CallHandle,
    private readonly input: DescMessage,
    private readonly types: Registry,
  ) {}

  write(chunk: Uint8Array): boolean {
    let ready = true;
    for (const frame of this.frames.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
      if (frame[0] & flagCompressed) {
        // The adapter decompresses for transcoded calls; this would be a bridge bug.
        this.call.cancel(new ConnectError("compressed request message reached the transcoder", Code.Internal));
        return true;
      }
      let binary: Uint8Array;
      try {
        binary = jsonToBinary(this.input, this.types, frame.subarray(envelopeHeaderLength));
      } catch (error) {
        this.call.cancel(error as ConnectError);
        return true;
      }
      ready = this.call.write(encodeEnvelope(0, binary));
    }
    return ready;
  }

  onDrain(listener: () => void): void {
    this.call.onDrain(listener);
  }

  /** The last bytes are transcoded like any others (a body with a Content-Length ends with them). */
  end(chunk?: Uint8Array): void {
    if (chunk !== undefined && chunk.byteLength > 0) this.write(chunk);
    this.call.end();
  }

  cancel(error: ConnectError): void {
    this.call.cancel(error);
  }
}

/**
 * Response frames: binary in, JSON out. Error details the schema knows get
 * their JSON form (Connect's `debug`).
 */
class TranscodingSink implements ResponseSink {
  private readonly frames = new FrameAssembler();
  private failed = false;

  constructor(
    private readonly inner: ResponseSink,
    private readonly method: DescMethod,
    private readonly types: Registry,
    /** The call to fail when a response message does not convert. */
    private readonly owner: { fail(error: ConnectError): void },
  ) {}

  onHeaders(headers: IncomingHttpHeaders): void {
    // Messages leave here uncompressed: the upstream was offered no coding.
    this.inner.onHeaders(headers, undefined);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    if (this.failed) return true;
    let ready = true;
    const output = this.method.output;
    for (const frame of this.frames.push(chunk)) {
      let json: string;
      try {
        if (frame[0] & flagCompressed) throw new Error("it is compressed, though the bridge offered no coding");
        json = toJsonString(output, fromBinary(output, frame.subarray(envelopeHeaderLength)), { registry: this.types });
      } catch (error) {
        this.failed = true;
        this.owner.fail(new ConnectError(`upstream response message cannot be transcoded to JSON ${output.typeName}: ${(error as Error).message}`, Code.Internal));
        return true;
      }
      ready = this.inner.onData(encodeEnvelope(0, Buffer.from(json)), resume);
    }
    return ready;
  }

  onEnd(end: CallEnd): void {
    const details = end.error?.details;
    if (details !== undefined) {
      for (let i = 0; i < details.length; i++) {
        const detail = details[i];
        if ("desc" in detail) continue;
        const desc = this.types.getMessage(detail.type);
        if (desc === undefined) continue;
        try {
          details[i] = { desc, value: fromBinary(desc, detail.value) };
        } catch {
          // A detail that does not decode stays as it came: type and bytes.
        }
      }
    }
    // Only whole messages were passed on, whatever the upstream cut off.
    this.inner.onEnd(end.midMessage ? { ...end, midMessage: false } : end);
  }
}
