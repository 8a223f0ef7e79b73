/**
 * Backpressure end to end: a slow client slows a fast upstream, and a slow
 * upstream slows a fast client, through HTTP/2 flow control on the upstream
 * side and socket backpressure on the client side — the bridge buffers a
 * bounded amount, whatever the stream's length.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import * as http2 from "node:http2";
import { once } from "node:events";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { startFlowUpstream, type FlowUpstream } from "../support/flow-upstream.js";

const total = 64 * 1024 * 1024;
/** What may sit between a stalled reader and the upstream: windows and socket buffers. */
const bound = 24 * 1024 * 1024;
const flood = "/flow.v1.Flow/Flood";
const streamFrame = Buffer.from([0, 0, 0, 0, 0]); // one empty request message

/** Waits until `read` stops growing (two samples 100 ms apart agree). */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  for (;;) {
    const now = read();
    if (now === last) return now;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("flow control", () => {
  let upstream: FlowUpstream;
  let bridge: RunningBridge;
  before(async () => {
    upstream = await startFlowUpstream(total);
    bridge = await startBridge(upstream.address, { maxResponseBytes: 1 << 20 });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("an HTTP/1.1 client that stops reading stalls the upstream (Connect streaming)", async (t) => {
    const before = upstream.flooded();
    const req = request(`${bridge.baseUrl}${flood}`, { method: "POST", headers: { "content-type": "application/connect+proto" } });
    req.end(streamFrame);
    const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
    res.pause();
    const stalledAt = (await settled(() => upstream.flooded())) - before;
    t.diagnostic(`upstream stalled ${stalledAt} bytes ahead of the client`);
    assert.ok(stalledAt < bound, `upstream got ${stalledAt} bytes ahead of a client reading nothing`);
    // Reading again lets the whole stream through.
    let received = 0;
    res.on("data", (c: Buffer) => (received += c.byteLength));
    res.resume();
    await once(res, "end");
    assert.ok(received > total, `received ${received}`);
  });

  it("an HTTP/2 client that stops reading stalls the upstream (gRPC pass-through)", async (t) => {
    const before = upstream.flooded();
    const session = http2.connect(bridge.baseUrl);
    const stream = session.request({ ":method": "POST", ":path": flood, "content-type": "application/grpc", te: "trailers" });
    stream.end(streamFrame);
    const trailersArrived = once(stream, "trailers");
    await once(stream, "response");
    stream.pause();
    const stalledAt = (await settled(() => upstream.flooded())) - before;
    t.diagnostic(`upstream stalled ${stalledAt} bytes ahead of the client`);
    assert.ok(stalledAt < bound, `upstream got ${stalledAt} bytes ahead of a client reading nothing`);
    let received = 0;
    stream.on("data", (c: Buffer) => (received += c.byteLength));
    stream.resume();
    const [trailers] = (await trailersArrived) as [http2.IncomingHttpHeaders];
    assert.equal(trailers["grpc-status"], "0");
    assert.equal(received, total);
    session.close();
  });

  it("a fast client sending into an upstream that does not read is held back", async (t) => {
    const req = request(`${bridge.baseUrl}/flow.v1.Flow/Sink`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
    });
    req.on("error", () => {});
    const chunk = Buffer.alloc(64 * 1024);
    chunk.writeUInt32BE(1 << 30, 1); // one huge frame header, then payload bytes
    let accepted = 0;
    let blocked = false;
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      accepted += chunk.byteLength;
      if (!req.write(chunk)) {
        const drained = await Promise.race([
          once(req, "drain").then(() => true),
          new Promise((resolve) => setTimeout(() => resolve(false), 500)),
        ]);
        if (!drained) {
          blocked = true;
          break;
        }
      }
      chunk.writeUInt32BE(0, 1); // later chunks are plain payload
    }
    t.diagnostic(`client held back after ${accepted} bytes`);
    assert.ok(blocked, `the client was never held back after ${accepted} bytes`);
    assert.ok(accepted < bound * 2, `the bridge accepted ${accepted} bytes for an upstream reading nothing`);
    req.destroy();
  });
});
