/**
 * Cuts a byte stream into whole gRPC frames, for whoever needs each message
 * whole: transcoding (to decode it), coding conversion (to inflate or deflate
 * it). The pass-through path only follows frame boundaries (FrameScanner)
 * and never holds a message.
 */
import { envelopeHeaderLength } from "./envelope.js";

export class FrameAssembler {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Size of the frame being collected, once its header is in. */
  private needed = 0;

  /**
   * Whole frames (header included) completed by `chunk`. Chunks of a large
   * message are joined once, when the message is complete, not per chunk.
   */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.needed === 0) {
        if (this.pendingBytes < envelopeHeaderLength) break;
        const head = this.pending[0].byteLength >= envelopeHeaderLength ? this.pending[0] : this.join();
        this.needed = envelopeHeaderLength + head.readUInt32BE(1);
      }
      if (this.pendingBytes < this.needed) break;
      const bytes = this.join();
      frames.push(bytes.subarray(0, this.needed));
      const rest = bytes.subarray(this.needed);
      this.pending = rest.byteLength > 0 ? [rest] : [];
      this.pendingBytes = rest.byteLength;
      this.needed = 0;
    }
    return frames;
  }

  private join(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
    return this.pending[0];
  }
}
