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

/** A gRPC upstream that answers after 200 ms and counts its connections. */
async function slowUpstream(settings: http2.Settings = {}) {
  let connections = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const server = http2.createServer({ settings });
  server.on("session", () => connections++);
  server.on("stream", (stream) => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    stream.on("close", () => concurrent--);
    stream.resume();
    stream.on("end", () =>
      setTimeout(() => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      }, 200),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ connections, maxConcurrent }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function sixAtOnce(baseUrl: string) {
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 6 }, () =>
      send(`${baseUrl}/a.B/C`, { headers: { "content-type": "application/proto" }, body: echoRequest({}) }),
    ),
  );
  for (const res of results) assert.equal(res.status, 200, res.body.toString());
  return Date.now() - started;
}

describe("streams per upstream connection", () => {
  it("maxStreamsPerConnection: 2 spreads 6 concurrent calls over 3 connections, all running at once", async () => {
    const upstream = await slowUpstream();
    const bridge = await startBridge(upstream.address, { maxStreamsPerConnection: 2 });
    try {
      const elapsed = await sixAtOnce(bridge.baseUrl);
      assert.equal(upstream.stats().connections, 3);
      assert.equal(upstream.stats().maxConcurrent, 6);
      assert.ok(elapsed < 600, `calls ran at once (${elapsed} ms for 6 calls of 200 ms)`);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });

  it("an upstream that allows 2 concurrent streams gets more connections, not a queue", async () => {
    const upstream = await slowUpstream({ maxConcurrentStreams: 2 });
    const bridge = await startBridge(upstream.address);
    try {
      // The first call learns the peer's SETTINGS; the burst then respects them.
      await send(`${bridge.baseUrl}/a.B/C`, { headers: { "content-type": "application/proto" }, body: echoRequest({}) });
      const elapsed = await sixAtOnce(bridge.baseUrl);
      assert.ok(upstream.stats().connections >= 3, `connections: ${upstream.stats().connections}`);
      assert.ok(elapsed < 600, `calls ran at once (${elapsed} ms for 6 calls of 200 ms)`);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});
