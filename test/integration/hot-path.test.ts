/**
 * Behaviour kept by the hot-path work of issue 15: each test names what a
 * cheaper path must still do.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { createBridge } from "../../src/index.js";
import { decodeEchoResponse, echoRequest } from "../support/raw-http.js";
import { lazyQuerystringParser } from "../../src/inbound/lazy-query.js";
import { request as httpRequest } from "node:http";
import { startBridge } from "../support/bridge.js";
import { Agent } from "node:http";
import { connect as netConnect } from "node:net";
import { StallWatch, type Watched } from "../../src/inbound/stall-watch.js";
import { readFramedBody } from "../../src/inbound/read-body.js";
import { PassThrough } from "node:stream";
import { execFileSync } from "node:child_process";
import type { IncomingMessage } from "node:http";
import { Code, type ConnectError } from "../../src/protocol/status.js";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect as http2Connect, constants as http2Constants, createServer as createHttp2Server, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";

describe("hot path (issue 15)", () => {
  let upstream: RunningServer;
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream.close();
  });

  it("lazy query parser: a host hook reading request.query of a Connect GET sees the parsed query, and the call works", async () => {
    const seen: unknown[] = [];
    const app = createBridge({ upstream: upstream.address });
    app.addHook("onRequest", async (request) => {
      const query = request.query as Record<string, string>;
      seen.push({ connect: query.connect, encoding: query.encoding, keys: Object.keys(query), has: "message" in query });
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const port = (app.server.address() as { port: number }).port;
      const message = echoRequest({ text: "a b+c" }).toString("base64url");
      const res = await fetch(
        `http://127.0.0.1:${port}/bridge.test.v1.TestService/Unary?connect=v1&encoding=proto&base64=1&message=${message}`,
      );
      assert.equal(res.status, 200);
      assert.equal(decodeEchoResponse(new Uint8Array(await res.arrayBuffer())).text, "a b+c");
      assert.deepEqual(seen, [{ connect: "v1", encoding: "proto", keys: ["connect", "encoding", "base64", "message"], has: true }]);
    } finally {
      app.server.closeAllConnections();
      await app.close();
    }
  });

  it("lazy query parser: the object acts as the parsed query in every respect (decoding, repeats, writes, JSON)", () => {
    const query = lazyQuerystringParser("a=1&b=x%20y&a=2&c=+") as Record<string, unknown>;
    assert.deepEqual(JSON.parse(JSON.stringify(query)), { a: ["1", "2"], b: "x y", c: " " });
    query.d = "4";
    assert.equal(query.d, "4");
    delete query.a;
    assert.deepEqual(Object.keys(query), ["b", "c", "d"]);
    assert.deepEqual(lazyQuerystringParser(""), {});
  });

  it("one pass over raw headers: headers named by Connection (two Connection lines, any case) still end at the bridge", async () => {
    const bridge = await startBridge(upstream.address);
    try {
      const body = echoRequest({ text: "hop-by-hop" });
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port: bridge.port,
            method: "POST",
            path: "/bridge.test.v1.TestService/Unary",
            headers: {
              "content-type": "application/proto",
              "content-length": body.byteLength,
              connection: ["keep-alive, X-Hop-One", "x-hop-two"],
              "x-hop-one": "a",
              "X-Hop-Two": "b",
              "x-kept": "c",
            },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
      assert.equal(status, 200);
      const seen = upstream.observations.metadata.get("hop-by-hop");
      assert.ok(seen, "the upstream saw the call");
      assert.deepEqual(seen["x-kept"], ["c"]);
      assert.equal(seen["x-hop-one"], undefined);
      assert.equal(seen["x-hop-two"], undefined);
    } finally {
      await bridge.close();
    }
  });

  it("cached Accept-Encoding: each call is answered in the codings its own header names, whatever came before", async () => {
    const bridge = await startBridge(upstream.address);
    try {
      const body = echoRequest({ text: "x".repeat(4096) });
      const encodingFor = async (acceptEncoding: string | undefined) => {
        const headers: Record<string, string> = { "content-type": "application/proto", "content-length": String(body.byteLength) };
        if (acceptEncoding !== undefined) headers["accept-encoding"] = acceptEncoding;
        return new Promise<string>((resolve, reject) => {
          const req = httpRequest({ host: "127.0.0.1", port: bridge.port, method: "POST", path: "/bridge.test.v1.TestService/Unary", headers }, (res) => {
            res.resume();
            res.on("end", () => resolve(`${res.statusCode} ${res.headers["content-encoding"] ?? "identity"}`));
          });
          req.on("error", reject);
          req.end(body);
        });
      };
      const answers = [];
      for (const value of ["gzip", "identity", "br;q=0, gzip", "gzip;q=0", "br", "gzip", undefined]) answers.push(await encodingFor(value));
      assert.deepEqual(answers, ["200 gzip", "200 identity", "200 gzip", "200 identity", "200 br", "200 gzip", "200 identity"]);
    } finally {
      await bridge.close();
    }
  });

  /** A unary POST whose body stalls (or runs long): the status and the Connect error JSON. */
  async function stalledPost(
    port: number,
    headers: Record<string, string | number>,
    write: (req: import("node:http").ClientRequest) => void,
  ): Promise<{ status: number; body: { code?: string; message?: string } }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, method: "POST", path: "/bridge.test.v1.TestService/Unary", headers: { "content-type": "application/proto", ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) });
          });
        },
      );
      req.on("error", (e) => (req.destroyed ? undefined : reject(e)));
      write(req);
    });
  }

  it("body reader class: a stalled body ends with the body timeout, or the call's shorter deadline, as before", async () => {
    const bridge = await startBridge(upstream.address, { unaryBodyTimeoutMs: 300, maxRequestBytes: 1000 });
    try {
      const stalled = await stalledPost(bridge.port, { "content-length": 100 }, (req) => req.write(Buffer.alloc(10)));
      assert.equal(stalled.body.code, "deadline_exceeded");
      assert.equal(stalled.body.message, "request body not received within 300 ms");
      const deadline = await stalledPost(bridge.port, { "content-length": 100, "connect-timeout-ms": 100 }, (req) => req.write(Buffer.alloc(10)));
      assert.equal(deadline.body.code, "deadline_exceeded");
      assert.equal(deadline.body.message, "deadline of 100 ms exceeded while receiving the request");
      // No Content-Length (chunked): the limit is counted as chunks arrive.
      const long = await stalledPost(bridge.port, {}, (req) => {
        req.write(Buffer.alloc(600));
        req.write(Buffer.alloc(600));
      });
      assert.equal(long.status, 429);
      assert.equal(long.body.code, "resource_exhausted");
      assert.equal(long.body.message, "request message of 1200 bytes exceeds the limit of 1000");
    } finally {
      await bridge.close();
    }
  });

  it("stall watch: entries fire between their timeout and one tick later, in the order watched; an unwatched one never; idle, no interval runs", async () => {
    const watch = new StallWatch(50); // ticks of 5 ms
    const fired: string[] = [];
    const entry = (name: string, onFire?: () => void): Watched & { at: number } => ({
      stallPrev: undefined,
      stallNext: undefined,
      stallAt: 0,
      stallWatched: false,
      at: 0,
      onStalled() {
        this.at = performance.now();
        fired.push(name);
        onFire?.();
      },
    });
    let last!: () => void;
    const done = new Promise<void>((resolve) => (last = resolve));
    const a = entry("a");
    const b = entry("b");
    const c = entry("c", () => last());
    const started = performance.now();
    watch.watch(a);
    watch.watch(b);
    watch.watch(c);
    assert.equal(watch.running, true);
    watch.unwatch(b);
    watch.unwatch(b); // twice is harmless
    assert.equal(watch.size, 2);
    await done;
    assert.deepEqual(fired, ["a", "c"]);
    for (const e of [a, c]) {
      assert.ok(e.at - started >= 50, `fired after ${e.at - started} ms, before the timeout`);
      // One tick late at most, plus the event loop's own lateness on a busy machine.
      assert.ok(e.at - started < 50 + 5 + 200, `fired after ${e.at - started} ms`);
    }
    assert.equal(watch.size, 0);
    assert.equal(watch.running, false, "an idle watch keeps no interval");
  });

  it("disconnect watch: after finished calls on a keep-alive connection, closing it mid-call still cancels the upstream call", async () => {
    const bridge = await startBridge(upstream.address);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const post = (text: string, delayMs = 0) =>
        new Promise<{ status: number; reused: boolean; destroy: () => void }>((resolve, reject) => {
          const body = echoRequest({ text, delayMs });
          const req = httpRequest(
            {
              host: "127.0.0.1",
              port: bridge.port,
              agent,
              method: "POST",
              path: "/bridge.test.v1.TestService/Unary",
              headers: { "content-type": "application/proto", "content-length": body.byteLength },
            },
            (res) => {
              res.resume();
              res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, destroy: () => req.destroy() }));
            },
          );
          req.on("error", reject);
          req.end(body);
          if (delayMs > 0) resolve({ status: 0, reused: req.reusedSocket, destroy: () => req.destroy() });
        });
      assert.equal((await post("first")).status, 200);
      assert.equal((await post("second")).status, 200);
      const hanging = await post("hang-after-two", 10_000);
      assert.equal(hanging.reused, true, "the third call rides the same connection");
      await upstream.observations.arrivedCall("hang-after-two");
      hanging.destroy();
      await upstream.observations.cancelledCall("hang-after-two");
    } finally {
      agent.destroy();
      await bridge.close();
    }
  });

  it("disconnect watch: two pipelined calls in flight on one connection are both cancelled when it closes", async () => {
    const bridge = await startBridge(upstream.address);
    try {
      const socket = netConnect(bridge.port, "127.0.0.1");
      socket.on("error", () => {});
      const request = (text: string) => {
        const body = echoRequest({ text, delayMs: 10_000 });
        return Buffer.concat([
          Buffer.from(
            `POST /bridge.test.v1.TestService/Unary HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nContent-Length: ${body.byteLength}\r\n\r\n`,
          ),
          body,
        ]);
      };
      socket.write(Buffer.concat([request("pipelined-one"), request("pipelined-two")]));
      await Promise.all([upstream.observations.arrivedCall("pipelined-one"), upstream.observations.arrivedCall("pipelined-two")]);
      socket.destroy();
      await Promise.all([upstream.observations.cancelledCall("pipelined-one"), upstream.observations.cancelledCall("pipelined-two")]);
    } finally {
      await bridge.close();
    }
  });

  it("body reader answers once: a 'close' after the body arrived, or the drained rest of a failed read, calls back nothing more", () => {
    const outcomes: { error: string | undefined; frame: Buffer | undefined }[] = [];
    const request = (contentLength?: number) => {
      const req = new PassThrough() as unknown as IncomingMessage;
      req.headers = contentLength === undefined ? {} : { "content-length": String(contentLength) };
      readFramedBody(req, 8, 0, 60_000, undefined, (error: ConnectError | undefined, frame?: Buffer) => {
        outcomes.push({ error: error?.message, frame });
      });
      return req;
    };
    const complete = request(3);
    complete.emit("data", Buffer.from("abc"));
    complete.emit("end");
    complete.emit("close");
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0].error, undefined);
    assert.deepEqual([...outcomes[0].frame!], [0, 0, 0, 0, 3, 97, 98, 99]);

    const tooLong = request();
    tooLong.emit("data", Buffer.alloc(9));
    tooLong.emit("data", Buffer.alloc(4)); // drained after the failure: not counted, not answered
    tooLong.emit("end");
    assert.equal(outcomes.length, 2);
    assert.match(outcomes[1].error!, /request message of 9 bytes exceeds the limit of 8/);
  });

  it("body reader: a client gone mid-body ends the read with canceled at once, over HTTP/1.1 and HTTP/2 (the 'close' listener that replaced 'aborted' and 'error')", async () => {
    // A real node:http / node:http2 compat request each; were 'close' not
    // seen, the read would end only with the body timeout's message.
    const read = (req: IncomingMessage) =>
      new Promise<ConnectError | undefined>((resolve) => readFramedBody(req, 1024, 0, 30_000, undefined, (error) => resolve(error)));
    // Resolves once the server holds the request and the read has begun (the result in a box: a promise would be adopted).
    const reading = (server: HttpServer | Http2Server) =>
      new Promise<{ result: Promise<ConnectError | undefined> }>((resolve) =>
        server.once("request", (req: IncomingMessage) => resolve({ result: read(req) })),
      );
    const h1 = createHttpServer();
    const h1Reading = reading(h1);
    await new Promise<void>((resolve) => h1.listen(0, "127.0.0.1", resolve));
    const h2 = createHttp2Server();
    const h2Reading = reading(h2);
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    const socket = netConnect((h1.address() as AddressInfo).port, "127.0.0.1");
    socket.on("error", () => {});
    const session = http2Connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
    session.on("error", () => {});
    try {
      socket.write("POST /a.B/C HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
      const stream = session.request({ ":method": "POST", ":path": "/a.B/C", "content-length": "100" });
      stream.on("error", () => {});
      stream.write("abc");
      for (const [name, pending, leave] of [
        ["HTTP/1.1", h1Reading, () => socket.destroy()],
        ["HTTP/2", h2Reading, () => stream.close(http2Constants.NGHTTP2_CANCEL)],
      ] as const) {
        const { result } = await pending;
        leave();
        const error = await result;
        assert.equal(error?.code, Code.Canceled, `${name}: ${error?.message}`);
        assert.equal(error?.rawMessage, "client closed the request body", name);
      }
    } finally {
      session.destroy();
      socket.destroy();
      h1.closeAllConnections();
      await new Promise((resolve) => h1.close(resolve));
      await new Promise((resolve) => h2.close(resolve));
    }
  });

  it("no ESM facade of node:http: a listening bridge has not loaded Node's bundled undici (1-2 MB of live heap that every full GC marks)", () => {
    // An ESM import of node:http reads its lazy WebSocket/CloseEvent/MessageEvent
    // exports, which load undici; src/node-http.ts takes the CommonJS module instead.
    const index = new URL("../../src/index.js", import.meta.url).href;
    const script = `
      const { createBridge } = await import(${JSON.stringify(index)});
      const app = createBridge({ upstream: "127.0.0.1:1" });
      await app.listen({ port: 0, host: "127.0.0.1" });
      const loaded = process.moduleLoadList.filter((name) => name.includes("undici"));
      await app.close();
      console.log(JSON.stringify(loaded));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.deepEqual(JSON.parse(out.trim().split("\n").pop()!), []);
  });
});
