/**
 * How many streams share one upstream connection: at most
 * maxStreamsPerConnection, and never more than the upstream's own
 * MAX_CONCURRENT_STREAMS; past that the bridge opens another connection
 * instead of letting calls queue inside a full one.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { startBridge } from "../support/bridge.js";
import { echoRequest, send } from "../support/raw-http.js";

/**
 * A gRPC upstream that counts its connections and holds every call until
 * `release` calls are open at once, then answers them all. Calls that queue
 * inside the bridge never reach that count, so the burst cannot finish: the
 * test waits for the event (all held calls open together), not for a clock.
 */
async function gatedUpstream(settings: http2.Settings = {}) {
  let connections = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  let release = 1;
  let held: http2.ServerHttp2Stream[] = [];
  const answer = (stream: http2.ServerHttp2Stream) => {
    if (stream.destroyed) return;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  };
  const server = http2.createServer({ settings });
  server.on("session", () => connections++);
  server.on("stream", (stream) => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    stream.on("close", () => concurrent--);
    stream.resume();
    stream.on("end", () => {
      held.push(stream);
      if (held.length < release) return;
      const all = held;
      held = [];
      all.forEach(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Calls are held until this many are open at once. */
    releaseAt: (n: number) => (release = n),
    /** How many calls are waiting for the others. */
    held: () => held.length,
    stats: () => ({ connections, maxConcurrent }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type GatedUpstream = Awaited<ReturnType<typeof gatedUpstream>>;

/**
 * Six calls at once, against an upstream that answers none until all six are
 * open: they finish only if they really ran side by side. If they queue, the
 * guard reports how many the upstream held.
 */
async function sixAtOnce(baseUrl: string, upstream: GatedUpstream) {
  upstream.releaseAt(6);
  const calls = Promise.all(
    Array.from({ length: 6 }, () =>
      send(`${baseUrl}/a.B/C`, { headers: { "content-type": "application/proto" }, body: echoRequest({}) }),
    ),
  );
  let guard: NodeJS.Timeout | undefined;
  const queued = new Promise<never>((_, reject) => {
    // A deadlock guard, not synchronisation: a passing run never waits for it.
    guard = setTimeout(() => reject(new Error(`calls queued: only ${upstream.held()} of 6 reached the upstream together`)), 5000);
  });
  try {
    const results = await Promise.race([calls, queued]);
    for (const res of results) assert.equal(res.status, 200, res.body.toString());
  } finally {
    clearTimeout(guard);
  }
}

describe("streams per upstream connection", () => {
  it("maxStreamsPerConnection: 2 spreads 6 concurrent calls over 3 connections, all running at once", async () => {
    const upstream = await gatedUpstream();
    const bridge = await startBridge(upstream.address, { maxStreamsPerConnection: 2 });
    try {
      await sixAtOnce(bridge.baseUrl, upstream);
      assert.equal(upstream.stats().connections, 3);
      assert.equal(upstream.stats().maxConcurrent, 6);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });

  it("an upstream that allows 2 concurrent streams gets more connections, not a queue", async () => {
    const upstream = await gatedUpstream({ maxConcurrentStreams: 2 });
    const bridge = await startBridge(upstream.address);
    try {
      // The first call learns the peer's SETTINGS; the burst then respects them.
      await send(`${bridge.baseUrl}/a.B/C`, { headers: { "content-type": "application/proto" }, body: echoRequest({}) });
      await sixAtOnce(bridge.baseUrl, upstream);
      assert.ok(upstream.stats().connections >= 3, `connections: ${upstream.stats().connections}`);
      assert.equal(upstream.stats().maxConcurrent, 6, "all six calls were open at the upstream at once");
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});
