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
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { startFlowUpstream, type FlowUpstream } from "../support/flow-upstream.js";

const total = 64 * 1024 * 1024;
/** What may sit between a stalled reader and the upstream: windows and socket buffers. */
const bound = 24 * 1024 * 1024;
const flood = "/flow.v1.Flow/Flood";
const streamFrame = Buffer.from([0, 0, 0, 0, 0]); // one empty request message
const frameBytes = 64 * 1024;
/** node:http2's default initial stream window, which the Sink upstream never reopens. */
const upstreamWindow = 65535;

/**
 * What may sit between a client and an upstream that reads nothing, once
 * backpressure holds: the client's socket send buffer and the bridge's
 * receive buffer at their largest (the kernel autotunes up to these), the
 * upstream's stream window, and Node's stream buffers and a frame in
 * progress on the way (1 MiB covers them many times over).
 */
function requestBound(): number {
  const max = (file: string, fallback: number) => {
    try {
      return Number(readFileSync(file, "latin1").trim().split(/\s+/)[2]) || fallback;
    } catch {
      return fallback;
    }
  };
  return max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20) + max("/proc/sys/net/ipv4/tcp_rmem", 6 << 20) + upstreamWindow + (1 << 20);
}

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

  it("a fast client sending into an upstream that does not read is held back", { timeout: 20_000 }, async (t) => {
    // Frames well within maxRequestBytes (4 MiB), so the bridge forwards them
    // and only flow control can stop the client.
    const frame = Buffer.alloc(frameBytes);
    frame.writeUInt32BE(frameBytes - 5, 1);
    const limit = requestBound();
    let bridgeSocket: Socket | undefined; // the bridge's end of this client's connection
    let check = () => {};
    const onConnection = (socket: Socket) => {
      bridgeSocket ??= socket;
      if (socket === bridgeSocket) socket.on("pause", () => check());
    };
    bridge.app.server.on("connection", onConnection);
    upstream.onSink(() => check()); // the call may reach the upstream after the client is already blocked
    const req = request(`${bridge.baseUrl}/flow.v1.Flow/Sink`, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/connect+proto" },
    });
    req.on("error", () => {});
    let written = 0; // handed to req.write
    let accepted = 0; // write callbacks: flushed to the kernel (Node 20) or handed to the socket (Node 24)
    const received = () => upstream.sinkState()?.buffered ?? 0;
    /**
     * Held back for good: the upstream's stream window is used up (it reads
     * nothing, so it never opens it again), the bridge has stopped reading the
     * client's socket, and the client's last write is waiting for a drain.
     * Nothing can move after that, so no clock is needed to see it.
     */
    const stalled = () => {
      const sink = upstream.sinkState();
      return sink !== undefined && sink.windowLeft === 0 && bridgeSocket?.isPaused() === true && req.writableNeedDrain;
    };
    const outcome = await new Promise<"stalled" | "overflowed">((resolve, reject) => {
      let settled = false;
      const settle = (how: "stalled" | "overflowed") => {
        if (!settled) resolve(how);
        settled = true;
      };
      let pinging = false;
      check = () => {
        if (settled) return;
        if (stalled()) return settle("stalled");
        // The bridge has stopped reading but the upstream's window is not shut
        // yet: its frames are on their way. A PING answered by the bridge comes
        // back behind them; look again then.
        if (bridgeSocket?.isPaused() && req.writableNeedDrain && !pinging && upstream.sinkState() !== undefined) {
          pinging = true;
          upstream.pingSink().then(() => {
            pinging = false;
            check();
          }, reject);
        }
      };
      const pump = () => {
        while (!settled) {
          if (written - received() > limit) return settle("overflowed");
          written += frame.byteLength;
          if (!req.write(frame, () => (accepted += frame.byteLength))) {
            req.once("drain", pump);
            return check();
          }
        }
      };
      pump();
    });
    bridge.app.server.off("connection", onConnection);
    const inFlight = written - received();
    t.diagnostic(`client held back: ${written} bytes written, ${accepted} handed to its socket, ${received()} at the upstream (read: ${upstream.sunk()}); bound ${limit}`);
    assert.equal(outcome, "stalled", `the bridge kept taking bytes for an upstream reading nothing: ${inFlight} in flight, bound ${limit}`);
    assert.equal(upstream.sunk(), 0, "the upstream read nothing");
    assert.ok(received() <= upstreamWindow, `the upstream got no more than its window: ${received()}`);
    assert.ok(inFlight < limit, `${inFlight} bytes between the client and the upstream, bound ${limit}`);
    assert.ok(req.writableNeedDrain, "the client's last write is still waiting for a drain");
    req.destroy();
  });
});
