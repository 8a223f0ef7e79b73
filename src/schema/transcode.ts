/**
 * JSON ↔ binary protobuf for calls whose client speaks JSON to a proto-only
 * upstream, with the schema's message descriptors (@bufbuild/protobuf's
 * canonical proto3 JSON mapping; `Any` resolved through the schema).
 *
 * Only calls that need it come here (JSON, and Connect GET when a schema is
 * configured); binary calls never touch this module. The adapters keep their
 * own CallHead and responder, which still speak the client's codec; the
 * upstream gets a copy of the head that says proto, and a sink in front of
 * the responder turns binary responses into JSON.
 */
import type { IncomingHttpHeaders } from "node:http";
import { fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage, type DescMethod, type Registry } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { refusedCall, type CallEnd, type CallHandle, type CallHead, type ResponseSink } from "../call.js";
import { decompress } from "../protocol/compression.js";
import { encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { Code, ConnectError } from "../protocol/status.js";
import type { BridgeContext, Exchange } from "../inbound/exchange.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import type { MethodLookup } from "./schema.js";

/** What a streaming adapter writes request frames into: the call, or a transcoder in front of it. */
export type RequestWriter = CallHandle;

/** How a streaming call is transcoded: the head the upstream gets, and wrappers for both directions. */
export interface StreamTranscoding {
  upstreamHead: CallHead;
  wrapSink(sink: ResponseSink): ResponseSink & { fail?: (error: ConnectError) => void };
  wrapCall(call: CallHandle): RequestWriter;
}

/** Answers a refused unary call with an HTTP status and headers of its own (GET on a method with side effects). */
export type Refuse = (error: ConnectError, httpStatus?: number, headers?: Record<string, string>) => void;

/**
 * A Connect unary call (POST with a JSON body, or any GET) when a schema may
 * apply. `start` runs the upstream call with the given head, sink and frame.
 */
export function transcodeUnary(
  ctx: BridgeContext,
  head: CallHead,
  frame: Buffer,
  sink: ResponseSink,
  isGet: boolean,
  refuse: Refuse,
  /** Returns undefined when the client has gone meanwhile. */
  start: (head: CallHead, sink: ResponseSink, frame: Buffer) => CallHandle | undefined,
): void {
  const schema = ctx.schema;
  if (schema === undefined) {
    start(head, withTranscodingHint(sink, undefined), frame);
    return;
  }
  schema.lookup(ctx.upstream, head.path).then(
    async (lookup) => {
      if (lookup.kind !== "method") {
        if (lookup.kind === "unknown-method") sink.onEnd(unknownMethod(head.path));
        else start(head, head.codec === "json" ? withTranscodingHint(sink, lookup.note) : sink, frame);
        return;
      }
      const { method } = lookup;
      if (method.methodKind !== "unary") {
        refuse(
          new ConnectError(
            `${head.path} is a ${method.methodKind.replace("_", "-")} method: call it with the Connect streaming protocol (Content-Type: application/connect+${head.codec}) or gRPC-Web`,
            Code.Unimplemented,
          ),
        );
        return;
      }
      if (isGet && !schema.allowGetForAllMethods && method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
        refuse(
          new ConnectError(
            `${head.path} may have side effects (it is not declared idempotency_level = NO_SIDE_EFFECTS): call it with POST, not GET`,
            Code.Unknown,
          ),
          405,
          { allow: "POST" },
        );
        return;
      }
      if (head.codec !== "json") {
        start(head, sink, frame);
        return;
      }
      let payload = frame.subarray(envelopeHeaderLength);
      if (frame[0] & flagCompressed) {
        payload = await decompress(head.requestEncoding!, payload, ctx.options.maxRequestBytes, "request message", Code.InvalidArgument);
      }
      const binary = jsonToBinary(method.input, lookup.types, payload);
      const responses = new TranscodingSink(sink, method, lookup.types);
      const call = start(upstreamHead(head), responses, encodeEnvelope(0, binary));
      if (call !== undefined) responses.fail = (error) => call.cancel(error);
    },
    (error: Error) => refuse(new ConnectError(`schema lookup failed: ${error.message}`, Code.Internal)),
  ).catch((error: unknown) => {
    refuse(error instanceof ConnectError ? error : new ConnectError(`transcoding failed: ${String(error)}`, Code.Internal));
  });
}

/**
 * A streaming call (Connect streaming or gRPC-Web) with the JSON codec.
 * Calls `start` with the transcoding to apply, or with none (pass through
 * as application/grpc+json); answers unknown methods and shape mismatches
 * itself.
 */
export function transcodeStreaming(
  ctx: BridgeContext,
  exchange: Exchange,
  head: CallHead,
  responder: ResponseSink,
  start: (responder: ResponseSink, transcoding: StreamTranscoding | undefined) => void,
): void {
  const schema = ctx.schema;
  if (schema === undefined) {
    start(withTranscodingHint(responder, undefined), undefined);
    return;
  }
  const refuse = (end: CallEnd) => {
    exchange.req.resume();
    responder.onEnd(end);
  };
  schema.lookup(ctx.upstream, head.path).then(
    (lookup: MethodLookup) => {
      if (lookup.kind === "unknown-method") return refuse(unknownMethod(head.path));
      if (lookup.kind === "not-described") return start(withTranscodingHint(responder, lookup.note), undefined);
      const { method, types } = lookup;
      const connectStreaming = /^application\/connect\+/i.test(exchange.req.headers["content-type"] ?? "");
      if (connectStreaming && method.methodKind === "unary") {
        return refuse(
          refusedCall(
            new ConnectError(`${head.path} is a unary method: call it with a Connect unary request (Content-Type: application/json)`, Code.Unimplemented),
          ),
        );
      }
      start(responder, {
        upstreamHead: upstreamHead(head),
        wrapSink: (sink) => new TranscodingSink(sink, method, types),
        wrapCall: (call) => new TranscodingWriter(call, method.input, types),
      });
    },
    (error: Error) => refuse(refusedCall(new ConnectError(`schema lookup failed: ${error.message}`, Code.Internal))),
  );
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
class TranscodingWriter implements RequestWriter {
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

  end(): void {
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
  fail: (error: ConnectError) => void = () => {};
  private readonly frames = new FrameAssembler();
  private failed = false;

  constructor(
    private readonly inner: ResponseSink,
    private readonly method: DescMethod,
    private readonly types: Registry,
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
        this.fail(new ConnectError(`upstream response message cannot be transcoded to JSON ${output.typeName}: ${(error as Error).message}`, Code.Internal));
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

/**
 * A JSON call passed through as application/grpc+json: when the upstream
 * rejects it the way proto-only servers do, the error says how to get
 * transcoding.
 */
function withTranscodingHint(inner: ResponseSink, note: string | undefined): ResponseSink {
  return {
    onHeaders: (headers, encoding) => inner.onHeaders(headers, encoding),
    onData: (chunk, resume) => inner.onData(chunk, resume),
    onEnd: (end) => {
      const error = end.error;
      // A procedure the upstream does not know is not a codec problem.
      if (error === undefined || end.unknownProcedure || (error.code !== Code.Internal && error.code !== Code.Unknown && error.code !== Code.Unimplemented)) {
        inner.onEnd(end);
        return;
      }
      const why = note === undefined ? "" : ` (server reflection failed: ${note})`;
      const hint =
        ` [the bridge has no schema for this method${why}, so it forwarded the JSON as application/grpc+json, which most gRPC servers reject;` +
        " give the bridge a schema to transcode JSON to protobuf: a descriptor set (--descriptor-set FILE, option schema.descriptorSets)" +
        " or the upstream's server reflection (--reflection, option schema.reflection)]";
      const hinted = new ConnectError(error.rawMessage + hint, error.code, error.metadata, undefined, error.cause);
      hinted.details.push(...error.details);
      inner.onEnd({ ...end, error: hinted });
    },
  };
}
