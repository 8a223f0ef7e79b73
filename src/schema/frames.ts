/**
 * Cuts a byte stream into whole gRPC frames. Transcoding needs each message
 * whole (to decode it), unlike the pass-through path, which only follows
 * frame boundaries (FrameScanner) and never holds a message.
 */
import { envelopeHeaderLength } from "../protocol/envelope.js";

export class FrameAssembler {
  private pending: Buffer | undefined;

  /** Whole frames (header included) completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    let bytes = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (bytes.byteLength >= envelopeHeaderLength) {
      const length = envelopeHeaderLength + bytes.readUInt32BE(1);
      if (bytes.byteLength < length) break;
      frames.push(bytes.subarray(0, length));
      bytes = bytes.subarray(length);
    }
    this.pending = bytes.byteLength > 0 ? bytes : undefined;
    return frames;
  }

  /** Whether the bytes so far end on a frame boundary. */
  get atBoundary(): boolean {
    return this.pending === undefined;
  }
}
