/**
 * FrameAssembler: whatever the chunking, the frames that come out are the
 * frames that went in, whole and in order.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameAssembler } from "../../src/protocol/frame-assembler.js";
import { envelope } from "../support/raw-http.js";

describe("FrameAssembler", () => {
  it("returns the frames sent, whole and in order, for any cut of the stream", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (messages, cuts) => {
          const frames = messages.map((m) => envelope(0, m));
          const stream = Buffer.concat(frames);
          const assembler = new FrameAssembler();
          const out: Buffer[] = [];
          for (let at = 0, i = 0; at < stream.byteLength; i++) {
            const size = cuts[i % cuts.length];
            out.push(...assembler.push(stream.subarray(at, at + size)));
            at += size;
          }
          assert.deepEqual(out.map((f) => Buffer.from(f)), frames);
        },
      ),
    );
  });
});
