/**
 * Node's HTTP/2 session memory budget on the upstream connections. Node
 * counts request bytes still queued for sending against it (10 MB by
 * default), and (Node 20 and 24 here) the unsent bytes of a stream the
 * bridge cancels stay counted for the session's life. Over budget, the
 * session resets every stream it opens or answers with ENHANCE_YOUR_CALM.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { startGrpcJsServer } from "../support/grpc-js-server.js";
import { startBridge } from "../support/bridge.js";
import { startFaultServer } from "../support/fault-server.js";
import { decodeEchoResponse, echoRequest, send } from "../support/raw-http.js";

const unary = "/bridge.test.v1.TestService/Unary";
const proto = { "content-type": "application/proto" };

/** Posts `body` and goes away right after it was sent, before any answer. */
function postAndLeave(port: number, body: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, method: "POST", path: unary, headers: { ...proto, "content-length": body.byteLength } });
    req.on("error", () => {});
    req.on("close", () => resolve());
    req.end(body, () => setImmediate(() => req.destroy()));
  });
}

describe("upstream session memory", () => {
  it("bug: 16 concurrent 1 MiB calls overflowed Node's session budget, and bursts of cancelled 1 MiB uploads then reset every later call with ENHANCE_YOUR_CALM", async () => {
    const upstream = await startGrpcJsServer();
    const bridge = await startBridge(upstream.address);
    try {
      const text = "m".repeat(1 << 20);
      const body = echoRequest({ text });
      const url = `${bridge.baseUrl}${unary}`;
      const concurrent = await Promise.all(Array.from({ length: 16 }, () => send(url, { headers: proto, body })));
      assert.deepEqual(
        concurrent.map((r) => r.status),
        Array(16).fill(200),
        concurrent.find((r) => r.status !== 200)?.body.toString(),
      );
      assert.equal(decodeEchoResponse(concurrent[0].body).text.length, text.length);
      // Each burst leaves unsent bytes of cancelled upstream streams behind;
      // with the default budget one or two bursts wedged the connection.
      for (let burst = 0; burst < 3; burst++) {
        await Promise.all(Array.from({ length: 32 }, () => postAndLeave(bridge.port, body)));
      }
      for (const size of [1 << 20, 16]) {
        const res = await send(url, { headers: proto, body: echoRequest({ text: "a".repeat(size) }) });
        assert.equal(res.status, 200, `${size} bytes after the bursts: ${res.body.toString()}`);
        assert.equal(decodeEchoResponse(res.body).text.length, size);
      }
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });

  it("a stream reset with ENHANCE_YOUR_CALM retires its connection: the upstream's code reaches the client, and the next call runs on a new connection", async () => {
    // A peer that finds us abusive, or our own session over its budget,
    // resets this way; either way that connection takes no more calls.
    const upstream = await startFaultServer();
    const bridge = await startBridge(upstream.address);
    try {
      const first = await send(`${bridge.baseUrl}/f.F/ResetEnhanceYourCalm`, { headers: proto, body: echoRequest({ text: "one" }) });
      assert.equal(first.status, 429, first.body.toString());
      assert.equal(JSON.parse(first.body.toString()).code, "resource_exhausted");
      const second = await send(`${bridge.baseUrl}/f.F/EmptyMessage`, { headers: proto, body: echoRequest({ text: "two" }) });
      assert.equal(second.status, 200);
      assert.equal(upstream.connections, 2);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});
