/**
 * Length-prefixed message framing shared by gRPC, gRPC-Web and Connect
 * streaming: 1 flag byte, a 4-byte big-endian length, then the payload.
 *
 * Hand-written rather than taken from `@connectrpc/connect/protocol`: that
 * implementation works on WHATWG async iterables and copies every message,
 * while the bridge wants to forward the caller's Buffers untouched and only
 * look at the five header bytes of each frame.
 */

export const envelopeHeaderLength = 5;
/** Payload is compressed with the negotiated encoding. */
export const flagCompressed = 0b0000_0001;
/** Connect end-stream message (response only). */
export const flagEndStream = 0b0000_0010;
/** gRPC-Web trailer frame (response only). */
export const flagTrailer = 0b1000_0000;

/** The five header bytes of one frame. */
export function envelopeHeader(flags: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(envelopeHeaderLength);
  header[0] = flags;
  header.writeUInt32BE(length, 1);
  return header;
}

/** A whole frame in one Buffer, for small bridge-generated messages. */
export function encodeEnvelope(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(envelopeHeaderLength + payload.byteLength);
  out[0] = flags;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, envelopeHeaderLength);
  return out;
}

/**
 * Called for each frame header found in the byte stream. Returning anything
 * but undefined rejects the frame; the value says why.
 */
export type FrameCheck<Problem> = (flags: number, length: number) => Problem | undefined;

/**
 * Follows frame boundaries in a byte stream without copying payloads, so a
 * proxy can pass chunks through as they arrive and still know whether the
 * stream ended cleanly and what each frame's flags were.
 */
export class FrameScanner<Problem = string> {
  /** Bytes of the current frame's payload not seen yet. */
  private remaining = 0;
  /**
   * Header bytes collected so far when a header straddles two chunks; made
   * only then (two scanners per call, and most calls never need it).
   */
  private header: Buffer | undefined = undefined;
  private headerFill = 0;
  /** Number of complete frame headers seen. */
  frames = 0;

  constructor(private readonly check: FrameCheck<Problem>) {}

  /** Scans one chunk; returns the check's verdict if a frame is rejected. */
  scan(chunk: Uint8Array): Problem | undefined {
    let pos = 0;
    const end = chunk.byteLength;
    while (pos < end) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, end - pos);
        this.remaining -= take;
        pos += take;
        continue;
      }
      let flags: number;
      let length: number;
      if (this.headerFill === 0 && end - pos >= envelopeHeaderLength) {
        flags = chunk[pos];
        length = readUInt32BE(chunk, pos + 1);
        pos += envelopeHeaderLength;
      } else {
        const header = (this.header ??= Buffer.allocUnsafe(envelopeHeaderLength));
        while (this.headerFill < envelopeHeaderLength && pos < end) {
          header[this.headerFill++] = chunk[pos++];
        }
        if (this.headerFill < envelopeHeaderLength) return undefined;
        this.headerFill = 0;
        flags = header[0];
        length = header.readUInt32BE(1);
      }
      this.frames++;
      const problem = this.check(flags, length);
      if (problem !== undefined) return problem;
      this.remaining = length;
    }
    return undefined;
  }

  /** True when the bytes seen so far end exactly on a frame boundary. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headerFill === 0;
  }
}

function readUInt32BE(bytes: Uint8Array, offset: number): number {
  return (
    bytes[offset] * 0x1000000 +
    ((bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3])
  );
}

/**
 * Splits a complete, buffered byte stream into frames. Used where the whole
 * body is already in memory (unary responses); returns undefined if the bytes
 * do not end on a frame boundary.
 */
export function splitEnvelopes(
  bytes: Buffer,
): { flags: number; data: Buffer }[] | undefined {
  const frames: { flags: number; data: Buffer }[] = [];
  let pos = 0;
  while (pos < bytes.byteLength) {
    if (bytes.byteLength - pos < envelopeHeaderLength) return undefined;
    const flags = bytes[pos];
    const length = bytes.readUInt32BE(pos + 1);
    const start = pos + envelopeHeaderLength;
    if (bytes.byteLength - start < length) return undefined;
    frames.push({ flags, data: bytes.subarray(start, start + length) });
    pos = start + length;
  }
  return frames;
}
