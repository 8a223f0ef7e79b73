/**
 * What streaming adapters (Connect streaming, gRPC-Web, gRPC) share:
 * starting the call, piping the client's frames upstream, converting
 * response codings, and writing response headers.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { CallEnd, CallHandle, CallHead, ResponseSink, StartCall } from "../call.js";
import { responseMetadata } from "../protocol/metadata.js";
import { FrameScanner, encodeEnvelope, envelopeHeaderLength, flagCompressed } from "../protocol/envelope.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import { compress, decompress, pickResponseCoding } from "../protocol/compression.js";
import { Code, ConnectError } from "../protocol/status.js";
import { cancelOnDisconnect, corkThisTurn, exposeHeaders, type AdapterOptions, type BridgeContext, type Exchange } from "./exchange.js";

type Decoder = { push(chunk: Buffer): Buffer | undefined; readonly complete: boolean };

/**
 * Starts the call and streams the request body into it. Messages in a
 * coding the upstream does not speak are decompressed on the way; those in
 * one it speaks pass through, inflated once only to enforce the
 * decompressed size limit. JSON messages are always sent plain: a
 * transcoding layer beneath may have to read every one.
 */
export function startStreamingCall(
  ctx: BridgeContext,
  exchange: Exchange,
  head: CallHead,
  responder: ResponseSink,
  /** Decodes the body into frames first (gRPC-Web text). */
  decoder?: Decoder,
): void {
  const clientCoding = head.requestEncoding;
  // Native gRPC names no client codings: everything passes untouched.
  const passthrough = head.clientAccepts === undefined;
  const convert =
    !passthrough && clientCoding !== undefined && (head.codec === "json" || !ctx.options.upstreamCompression.includes(clientCoding));
  if (convert) head.requestEncoding = undefined; // the upstream gets plain messages
  const call = passthrough ? ctx.startCall(head, responder) : new CodingCall(ctx.startCall, head, responder, head.clientAccepts!, ctx.options);
  cancelOnDisconnect(exchange, call);
  forwardRequestFrames(ctx, exchange, clientCoding, call, decoder, passthrough || clientCoding === undefined ? undefined : convert);
}

/**
 * Stands between the call and a streaming responder when the response
 * messages may need another coding: decompresses messages the client cannot
 * read, compresses large ones when the client accepts a coding the upstream
 * did not use. Otherwise it only passes things on. It is the sink of the
 * call it starts, and fails that call itself when a message does not convert.
 */
class CodingCall implements CallHandle, ResponseSink {
  private readonly call: CallHandle;
  private converter: FrameConverter | undefined;
  private drained: (() => void) | undefined;

  constructor(
    start: StartCall,
    head: CallHead,
    private readonly inner: ResponseSink,
    private readonly clientAccepts: readonly string[],
    private readonly options: AdapterOptions,
  ) {
    this.call = start(head, this);
  }

  write(chunk: Uint8Array): boolean {
    return this.call.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.call.onDrain(listener);
  }

  end(chunk?: Uint8Array): void {
    this.call.end(chunk);
  }

  cancel(error: ConnectError): void {
    this.call.cancel(error);
  }

  onHeaders(headers: IncomingHttpHeaders, encoding: string | undefined): void {
    const { options } = this;
    let out = encoding;
    let convert: ((frame: Buffer) => Promise<Buffer>) | undefined;
    if (encoding !== undefined && !this.clientAccepts.includes(encoding)) {
      // The upstream compressed against grpc-accept-encoding: decompress.
      out = undefined;
      convert = async (frame) =>
        encodeEnvelope(0, await decompress(encoding, frame.subarray(envelopeHeaderLength), options.maxResponseBytes, "upstream response message", Code.Internal));
    } else if (encoding === undefined) {
      const target = pickResponseCoding(this.clientAccepts, options.acceptCompression);
      if (target !== undefined) {
        out = target;
        convert = async (frame) => encodeEnvelope(flagCompressed, await compress(target, frame.subarray(envelopeHeaderLength)));
      }
    }
    if (convert !== undefined) {
      this.converter = new FrameConverter(
        convert,
        (frame) => this.inner.onData(frame, () => this.drained?.()),
        (resume) => (this.drained = resume),
        (error) => this.call.cancel(error),
        // Compressing: only messages worth it; decompressing: every compressed one.
        out === undefined ? (frame) => (frame[0] & flagCompressed) !== 0 : (frame) => frame.byteLength - envelopeHeaderLength >= options.compressMinBytes && (frame[0] & flagCompressed) === 0,
      );
    }
    this.inner.onHeaders(headers, out);
  }

  onData(chunk: Buffer, resume: () => void): boolean {
    if (this.converter === undefined) return this.inner.onData(chunk, resume);
    let paused = false;
    this.converter.push(chunk, { pause: () => (paused = true), resume });
    return !paused;
  }

  onEnd(end: CallEnd): void {
    const converter = this.converter;
    if (converter === undefined) return this.inner.onEnd(end);
    // Whole frames only ever reach the responder from here.
    converter.whenIdle(() => this.inner.onEnd({ ...end, midMessage: false }));
  }
}

/**
 * Writes the response head of a streaming call right away: base headers,
 * the upstream's metadata, the name of the response coding under
 * `encodingHeader`. Streaming clients may wait for headers before sending more.
 */
export function writeStreamHead(
  exchange: Exchange,
  out: OutgoingHttpHeaders,
  upstreamHeaders: IncomingHttpHeaders,
  encodingHeader: string,
  encoding: string | undefined,
): void {
  responseMetadata(upstreamHeaders, out);
  if (encoding !== undefined) out[encodingHeader] = encoding;
  exposeHeaders(exchange, out);
  exchange.res.writeHead(200, out);
  // Sent once this turn's reads are done, with the messages (and end) they brought.
  corkThisTurn(exchange.res);
  exchange.res.flushHeaders();
}

/**
 * Pipes the client's request frames upstream, checking each frame header and
 * honouring backpressure. `decode` turns the body into frame bytes first
 * (gRPC-Web text mode); it returns undefined for input it cannot decode.
 */
function forwardRequestFrames(
  ctx: BridgeContext,
  exchange: Exchange,
  clientCoding: string | undefined,
  call: CallHandle,
  decoder: Decoder | undefined,
  /** Compressed messages: true to decompress them, false to only check their size, undefined if none. */
  convert: boolean | undefined,
): void {
  const { req } = exchange;
  const max = ctx.options.maxRequestBytes;
  const scanner = new FrameScanner<ConnectError>((flags, length) => {
    if (flags === flagCompressed && clientCoding === undefined) {
      // What Connect servers answer: the client broke its own negotiation.
      return new ConnectError("compressed request message without Connect-Content-Encoding", Code.Internal);
    }
    if (flags & ~flagCompressed) {
      return new ConnectError(`request message has invalid flags 0x${flags.toString(16)}`, Code.InvalidArgument);
    }
    if (length > max) {
      return new ConnectError(`request message of ${length} bytes exceeds the limit of ${max}`, Code.ResourceExhausted);
    }
    return undefined;
  });
  let failed = false;
  const fail = (error: ConnectError) => {
    failed = true;
    req.resume();
    call.cancel(error);
  };
  const converter =
    convert === undefined
      ? undefined
      : new FrameConverter(
          async (frame) => {
            const plain = await decompress(clientCoding!, frame.subarray(envelopeHeaderLength), max, "request message", Code.InvalidArgument);
            return convert ? encodeEnvelope(0, plain) : frame;
          },
          (frame) => call.write(frame),
          (resume) => call.onDrain(resume),
          fail,
        );
  // With a Content-Length, the chunk that completes the body ends the call at
  // once: the upstream gets the last bytes and END_STREAM in one DATA frame
  // instead of a write and an empty end, and the request-side work of a
  // unary-shaped call (gRPC-Web, a Connect client stream) is one operation.
  const declared = req.headers["content-length"];
  let unread = declared === undefined ? -1 : Number(declared);
  let ended = false;
  const endCall = (last?: Buffer) => {
    if (!scanner.atBoundary || (decoder !== undefined && !decoder.complete)) {
      fail(new ConnectError("request body ended inside a message", Code.InvalidArgument));
      return;
    }
    ended = true;
    if (converter !== undefined) {
      if (last !== undefined) converter.push(last, req);
      converter.whenIdle(() => failed || call.end());
    } else {
      call.end(last);
    }
  };
  req.on("data", (raw: Buffer) => {
    if (failed || ended) return;
    const chunk = decoder === undefined ? raw : decoder.push(raw);
    if (chunk === undefined) {
      fail(new ConnectError("request body is not valid base64", Code.InvalidArgument));
      return;
    }
    const problem = scanner.scan(chunk);
    if (problem !== undefined) {
      fail(problem);
      return;
    }
    if (unread >= 0 && (unread -= raw.byteLength) <= 0) {
      endCall(chunk);
      return;
    }
    if (converter !== undefined) {
      converter.push(chunk, req);
      return;
    }
    if (!call.write(chunk)) {
      req.pause();
      call.onDrain(() => req.resume());
    }
  });
  req.on("end", () => {
    if (failed || ended) return;
    endCall();
  });
}

/**
 * Runs the selected frames of a stream (compressed ones, by default) through
 * `convert`, one message at a time and in order; the others pass as they are. The source is paused
 * while a message is being converted or the destination is full, so memory
 * stays at about one message.
 */
class FrameConverter {
  private readonly assembler = new FrameAssembler();
  /** Whole frames received and not yet converted, in order. */
  private ready: Buffer[] = [];
  private busy = false;
  private idle: (() => void) | undefined;

  constructor(
    private readonly convert: (frame: Buffer) => Promise<Buffer>,
    private readonly write: (frame: Buffer) => boolean,
    private readonly onDrain: (resume: () => void) => void,
    private readonly fail: (error: ConnectError) => void,
    /** Which frames go through `convert`; the others pass as they are. */
    private readonly select: (frame: Buffer) => boolean = (frame) => (frame[0] & flagCompressed) !== 0,
  ) {}

  push(chunk: Buffer, source: { pause(): void; resume(): void }): void {
    for (const frame of this.assembler.push(chunk)) this.ready.push(frame);
    if (this.busy) return;
    source.pause();
    this.busy = true;
    this.drain().then(
      () => {
        this.busy = false;
        source.resume();
        const idle = this.idle;
        this.idle = undefined;
        idle?.();
      },
      (error: ConnectError) => this.fail(error),
    );
  }

  /** Runs `callback` once every complete frame received so far is written. */
  whenIdle(callback: () => void): void {
    if (this.busy) this.idle = callback;
    else callback();
  }

  private async drain(): Promise<void> {
    for (;;) {
      const frame = this.nextFrame();
      if (frame === undefined) return;
      const out = this.select(frame) ? await this.convert(frame) : frame;
      if (!this.write(out)) await new Promise<void>((resolve) => this.onDrain(resolve));
    }
  }

  /** The next whole frame, if the bytes so far hold one. */
  private nextFrame(): Buffer | undefined {
    return this.ready.shift();
  }
}
