/**
 * JSON clients through the bridge to a proto-only @grpc/grpc-js upstream,
 * with the schema from a descriptor set (built by `buf build`) or from the
 * upstream's server reflection (@grpc/reflection): curl, connect-node's
 * Connect and gRPC-Web transports with useBinaryFormat: false, and buf curl.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import { promisify } from "node:util";
import { create, createRegistry, equals, fromJson, toBinary } from "@bufbuild/protobuf";
import { anyPack, timestampFromMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { gunzipSync, gzipSync } from "node:zlib";
import { EchoRequestSchema, TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { Color, WellKnownSchema, WellKnownService } from "../../gen/bridge/test/v1/wkt_pb.js";
import { buildDescriptorSet, startSchemaUpstream, type SchemaUpstream } from "../support/schema-upstream.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { resolveOptions } from "../../src/options.js";
import { loadConfig } from "../../src/config/load.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createBridge, type CreateBridgeOptions } from "../../src/index.js";
import type { AddressInfo } from "node:net";
import { envelope, splitFrames } from "../support/raw-http.js";

const run = promisify(execFile);
const buf = new URL("../../../node_modules/.bin/buf", import.meta.url).pathname;

/** curl, as a user runs it; returns the HTTP status and the body. */
async function curl(...args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run("curl", ["-sS", "-w", "\n%{http_code}", ...args]);
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

function postJson(bridge: RunningBridge, path: string, body: string) {
  return curl("-H", "content-type: application/json", "--data-binary", body, `${bridge.baseUrl}${path}`);
}

/** A message with every well-known type, several set to values JSON writes specially. */
function wellKnown() {
  return create(WellKnownSchema, {
    timestamp: timestampFromMs(1_700_000_000_123),
    duration: { seconds: 90n, nanos: 5_000_000 },
    struct: { name: "x", list: [1, "two", null, true], nested: { deep: 1.5 } },
    value: fromJson(ValueSchema, ["a", 2, { b: false }]),
    any: anyPack(EchoRequestSchema, create(EchoRequestSchema, { text: "packed", responseCount: 3 })),
    fieldMask: { paths: ["text", "fail.code"] },
    stringValue: "",
    int64Value: 9007199254740993n,
    boolValue: false,
    bytesValue: new Uint8Array([0, 1, 255]),
    doubleValue: 0.1,
    plainInt64: -5n,
    plainBytes: new Uint8Array([250, 251]),
    color: Color.RED,
    counts: { a: 1, b: -2 },
  });
}

let descriptorSet: string;
before(async () => {
  descriptorSet = await buildDescriptorSet();
});
// Regression: each run left its bridge-schema-* folder in the temp directory.
after(() => rmSync(dirname(descriptorSet), { recursive: true, force: true }));

const sources = [
  { name: "descriptor set", schema: () => ({ descriptorSets: [descriptorSet] }) },
  { name: "server reflection", schema: () => ({ reflection: true }) },
];

for (const source of sources) {
  describe(`JSON transcoding, schema from ${source.name}`, () => {
    let upstream: SchemaUpstream;
    let bridge: RunningBridge;

    before(async () => {
      upstream = await startSchemaUpstream({ reflection: true });
      bridge = await startBridge(upstream.address, { schema: source.schema() });
    });
    after(async () => {
      await bridge.close();
      await upstream.close();
    });

    it("curl POSTs JSON to a unary method of a proto-only server", async () => {
      const { status, body } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"hello","responseSize":2}');
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(body), { text: "hello", payload: "AAA=" });
    });

    it("curl GET works for a NO_SIDE_EFFECTS method and is refused (405) for one with side effects", async () => {
      const message = encodeURIComponent('{"text":"by get"}');
      const ok = await curl(`${bridge.baseUrl}/bridge.test.v1.TestService/Unary?encoding=json&message=${message}`);
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body), { text: "by get" });
      const refused = await curl(`${bridge.baseUrl}/bridge.test.v1.WellKnownService/Echo?encoding=json&message=%7B%7D`);
      assert.equal(refused.status, 405);
      assert.equal(JSON.parse(refused.body).code, "unknown");
      assert.match(JSON.parse(refused.body).message, /NO_SIDE_EFFECTS.*POST/);
      assert.equal(upstream.received.length, 0, "the refused GET never reached the upstream");
    });

    it("connect-node Connect JSON: unary, server, client and bidi streaming (HTTP/2)", async () => {
      const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "2", useBinaryFormat: false }));
      assert.equal((await client.unary({ text: "u" })).text, "u");
      const streamed: number[] = [];
      for await (const r of client.serverStream({ text: "s", responseCount: 3 })) streamed.push(r.index);
      assert.deepEqual(streamed, [0, 1, 2]);
      async function* requests() {
        for (const text of ["a", "b", "c"]) yield { text };
      }
      assert.equal((await client.clientStream(requests())).text, "a,b,c");
      const echoed: string[] = [];
      for await (const r of client.bidiStream(requests())) echoed.push(r.text);
      assert.deepEqual(echoed, ["a", "b", "c"]);
    });

    it("large messages (about 1 MiB each way) stream through transcoding in many chunks", async () => {
      const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "2", useBinaryFormat: false }));
      const payload = new Uint8Array(700_000).fill(7);
      async function* requests() {
        yield { text: "big", payload, responseSize: 1_000_000 };
        yield { text: "big2", responseSize: 1_000_000 };
      }
      const sizes: number[] = [];
      for await (const r of client.bidiStream(requests())) sizes.push(r.payload.byteLength);
      assert.deepEqual(sizes, [1_000_000, 1_000_000]);
    });

    it("connect-node gRPC-Web JSON (+json): unary and server streaming over HTTP/1.1", async () => {
      const client = createClient(TestService, createGrpcWebTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: false }));
      assert.equal((await client.unary({ text: "w" })).text, "w");
      const streamed: string[] = [];
      for await (const r of client.serverStream({ text: "ws", responseCount: 2 })) streamed.push(`${r.text}${r.index}`);
      assert.deepEqual(streamed, ["ws0", "ws1"]);
    });

    it("well-known types round-trip byte-exactly (Connect JSON, gRPC-Web JSON)", async () => {
      const registry = createRegistry(EchoRequestSchema);
      for (const transport of [createConnectTransport, createGrpcWebTransport]) {
        const client = createClient(
          WellKnownService,
          transport({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: false, jsonOptions: { registry } }),
        );
        const sent = wellKnown();
        upstream.received.length = 0;
        const answer = await client.echo(sent);
        assert.deepEqual(upstream.received[0], Buffer.from(toBinary(WellKnownSchema, sent)), "the upstream got the message's exact protobuf bytes");
        assert.ok(equals(WellKnownSchema, answer, sent), "the client got the same message back");
      }
    });

    it("error details get their debug JSON in Connect errors", async () => {
      const { status, body } = await postJson(
        bridge,
        "/bridge.test.v1.TestService/Unary",
        '{"text":"f","fail":{"code":9,"message":"not now","withDetails":true}}',
      );
      assert.equal(status, 400);
      const error = JSON.parse(body);
      assert.equal(error.code, "failed_precondition");
      assert.deepEqual(error.details[0].debug, { reason: "test-reason", retryAfterMs: "1500" });
      assert.equal(error.details[0].type, "bridge.test.v1.ErrorDetail");
    });

    it("Connect streaming errors carry debug details; gRPC-Web text +json is transcoded too", async () => {
      const stream = await fetch(`${bridge.baseUrl}/bridge.test.v1.TestService/ServerStream`, {
        method: "POST",
        headers: { "content-type": "application/connect+json" },
        body: new Uint8Array(envelope(0, Buffer.from('{"text":"s","responseCount":1,"fail":{"code":8,"message":"slow down","withDetails":true}}'))),
      });
      const frames = splitFrames(Buffer.from(await stream.arrayBuffer()));
      assert.deepEqual(JSON.parse(frames[0].data.toString()), { text: "s" });
      const end = JSON.parse(frames[1].data.toString());
      assert.equal(end.error.code, "resource_exhausted");
      assert.deepEqual(end.error.details[0].debug, { reason: "test-reason", retryAfterMs: "1500" });

      const text = await fetch(`${bridge.baseUrl}/bridge.test.v1.TestService/Unary`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web-text+json", "x-grpc-web": "1" },
        body: envelope(0, Buffer.from('{"text":"b64"}')).toString("base64"),
      });
      assert.equal(text.headers.get("content-type"), "application/grpc-web-text+json");
      // The bridge pads each chunk it encodes: decode segment by segment.
      const segments = (await text.text()).match(/[^=]+=*/g)!;
      const decoded = splitFrames(Buffer.concat(segments.map((segment) => Buffer.from(segment, "base64"))));
      assert.deepEqual(JSON.parse(decoded[0].data.toString()), { text: "b64" });
      assert.match(decoded[1].data.toString(), /grpc-status: ?0/);
    });

    it("an unknown method of a service the schema describes is unimplemented, from the bridge", async () => {
      const { status, body } = await postJson(bridge, "/bridge.test.v1.TestService/Missing", "{}");
      assert.equal(status, 404);
      assert.equal(JSON.parse(body).code, "unimplemented");
      assert.match(JSON.parse(body).message, /not a method of bridge\.test\.v1\.TestService in the bridge's schema/);
    });

    it("a call whose shape does not match the method gets a clear error", async () => {
      const unaryToStream = await postJson(bridge, "/bridge.test.v1.TestService/ServerStream", "{}");
      assert.equal(JSON.parse(unaryToStream.body).code, "unimplemented");
      assert.match(JSON.parse(unaryToStream.body).message, /server-streaming method: call it with the Connect streaming protocol/);
      const streamToUnary = await fetch(`${bridge.baseUrl}/bridge.test.v1.TestService/Unary`, {
        method: "POST",
        headers: { "content-type": "application/connect+json" },
        body: new Uint8Array(envelope(0, Buffer.from("{}"))),
      });
      const frames = splitFrames(Buffer.from(await streamToUnary.arrayBuffer()));
      const end = JSON.parse(frames[frames.length - 1].data.toString());
      assert.equal(end.error.code, "unimplemented");
      assert.match(end.error.message, /is a unary method: call it with a Connect unary request/);
    });

    it("JSON that does not fit the request type is invalid_argument naming the type", async () => {
      const { status, body } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":5,"nope":1}');
      assert.equal(status, 400);
      assert.equal(JSON.parse(body).code, "invalid_argument");
      assert.match(JSON.parse(body).message, /not a valid JSON bridge\.test\.v1\.EchoRequest/);
    });

    it("malformed JSON: broken, too deep, or a bad message mid-stream is invalid_argument and cancels the upstream call", async () => {
      for (const body of ["{", "", '{"fail":' + "[".repeat(200) + "]".repeat(200) + "}", '{"text":"\ud800"}x']) {
        const { body: answer } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", body);
        assert.equal(JSON.parse(answer).code, "invalid_argument", body.slice(0, 20));
      }
      const stream = await fetch(`${bridge.baseUrl}/bridge.test.v1.TestService/BidiStream`, {
        method: "POST",
        headers: { "content-type": "application/connect+json" },
        body: new Uint8Array(Buffer.concat([envelope(0, Buffer.from('{"text":"bidi-ok"}')), envelope(0, Buffer.from('{"text":'))])),
      });
      const frames = splitFrames(Buffer.from(await stream.arrayBuffer()));
      const end = JSON.parse(frames[frames.length - 1].data.toString());
      assert.equal(end.error.code, "invalid_argument");
      assert.match(end.error.message, /not a valid JSON bridge\.test\.v1\.EchoRequest/);
      await upstream.observations.cancelledCall("bidi-ok");
    });

    it("compressed JSON is inflated before transcoding and large JSON responses are compressed for the client", async () => {
      // node:http, which leaves the response body as it came (fetch would inflate it).
      const request = http.request(`${bridge.baseUrl}/bridge.test.v1.TestService/Unary`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip", "accept-encoding": "gzip" },
      });
      request.end(gzipSync('{"text":"zipped","responseSize":3000}'));
      const [response] = (await once(request, "response")) as [http.IncomingMessage];
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers["content-encoding"], "gzip");
      const json = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString());
      assert.equal(json.text, "zipped");
      assert.equal(Buffer.from(json.payload, "base64").byteLength, 3000);

      const client = createClient(
        TestService,
        createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "2", useBinaryFormat: false, sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 1 }),
      );
      async function* requests() {
        for (const text of ["x", "y"]) yield { text, responseSize: 2000 };
      }
      const echoed: string[] = [];
      for await (const r of client.bidiStream(requests())) echoed.push(`${r.text}:${r.payload.byteLength}`);
      assert.deepEqual(echoed, ["x:2000", "y:2000"]);
    });

    it("binary clients are untouched: connect-node proto, and buf curl with --schema (Connect and gRPC-Web)", async () => {
      const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
      assert.equal((await client.unary({ text: "bin" })).text, "bin");
      for (const protocol of ["connect", "grpcweb"]) {
        const { stdout } = await run(buf, [
          "curl",
          "--schema",
          descriptorSet,
          "--protocol",
          protocol,
          "-d",
          '{"text":"buf"}',
          `${bridge.baseUrl}/bridge.test.v1.TestService/Unary`,
        ]);
        assert.deepEqual(JSON.parse(stdout), { text: "buf" });
      }
    });
  });
}

describe("JSON without a schema", () => {
  let upstream: SchemaUpstream;
  let bridge: RunningBridge;
  const warnings: { msg: string; cluster?: string; method?: string; code?: string; reflectionError?: string }[] = [];
  const hints = () => warnings.filter((w) => /has no schema for this method/.test(w.msg));
  before(async () => {
    upstream = await startSchemaUpstream({ reflection: false });
    bridge = await startBridge(upstream.address, {
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void warnings.push(JSON.parse(line)) } } },
    });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("passes as application/grpc+json; the proto-only server's rejection arrives as it was sent, and the log says once how to enable transcoding", async () => {
    for (let i = 0; i < 3; i++) {
      const { body } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"x"}');
      const error = JSON.parse(body);
      assert.equal(error.code, "internal");
      assert.doesNotMatch(error.message, /schema|grpc\+json|descriptor-set/, "the upstream's message is not rewritten");
    }
    assert.equal(hints().length, 1, "one hint per cluster and method, not one per call");
    assert.equal(hints()[0].method, "/bridge.test.v1.TestService/Unary");
    assert.equal(hints()[0].code, "internal");
    assert.match(hints()[0].msg, /--descriptor-set FILE.*--reflection/);
  });

  it("gRPC-Web +json gets the upstream's own grpc-message", async () => {
    const client = createClient(TestService, createGrpcWebTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: false }));
    await assert.rejects(client.unary({ text: "x" }), (e: ConnectError) => e.code === Code.Internal && !/schema/.test(e.message));
  });

  it("an unknown procedure gets no transcoding hint (it is not a codec problem)", async () => {
    const { body } = await postJson(bridge, "/bridge.test.v1.TestService/Missing", "{}");
    assert.equal(JSON.parse(body).code, "unimplemented");
    assert.doesNotMatch(JSON.parse(body).message, /descriptor-set/);
    assert.ok(!hints().some((h) => h.method === "/bridge.test.v1.TestService/Missing"));
  });
});

describe("server reflection outage mid-run", () => {
  let upstream: SchemaUpstream;
  let bridge: RunningBridge;
  const warnings: { msg: string; cachedSchema?: boolean; err?: { message: string } }[] = [];
  before(async () => {
    upstream = await startSchemaUpstream({ reflection: true });
    bridge = await startBridge(upstream.address, {
      // Every call finds the schema stale: each one triggers a background refetch.
      schema: { reflection: { refreshIntervalMs: 1, maxBackoffMs: 1 } },
      fastify: {
        logger: {
          level: "warn",
          stream: { write: (line: string) => void warnings.push(JSON.parse(line)) },
        },
      },
    });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("binary calls and JSON calls on the cached schema keep working; the failure is logged; a bridge without a cache says why in its log", async () => {
    const json = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1", useBinaryFormat: false }));
    const binary = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    assert.equal((await json.unary({ text: "before" })).text, "before");

    upstream.stopReflection();
    const deadline = Date.now() + 5000;
    // Calls go on while the background refetches fail; poll until one was logged.
    while (!warnings.some((w) => w.msg === "server reflection failed")) {
      assert.ok(Date.now() < deadline, "no reflection failure was logged");
      assert.equal((await json.unary({ text: "during" })).text, "during");
      assert.equal((await binary.unary({ text: "binary" })).text, "binary");
    }
    const failure = warnings.find((w) => w.msg === "server reflection failed")!;
    assert.equal(failure.cachedSchema, true);
    assert.match(failure.err!.message, /grpc-status 12/);

    const freshLog: { msg: string; reflectionError?: string }[] = [];
    const fresh = await startBridge(upstream.address, {
      schema: { reflection: true },
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void freshLog.push(JSON.parse(line)) } } },
    });
    try {
      const { body } = await postJson(fresh, "/bridge.test.v1.TestService/Unary", '{"text":"x"}');
      assert.doesNotMatch(JSON.parse(body).message, /server reflection failed/, "the upstream's error is not rewritten");
      const hint = freshLog.find((w) => /has no schema for this method/.test(w.msg));
      assert.match(hint?.reflectionError ?? "", /reflection of 127\.0\.0\.1:\d+ .*grpc-status 12/);
      const freshBinary = createClient(TestService, createConnectTransport({ baseUrl: fresh.baseUrl, httpVersion: "1.1" }));
      assert.equal((await freshBinary.unary({ text: "still" })).text, "still");
    } finally {
      await fresh.close();
    }
  });
});

describe("binary calls with reflection configured", () => {
  it("never consult the schema: proto calls of every protocol cause no reflection fetch", async () => {
    const upstream = await startSchemaUpstream({ reflection: true });
    const bridge = await startBridge(upstream.address, { schema: { reflection: true } });
    try {
      for (const transport of [createConnectTransport, createGrpcWebTransport]) {
        const client = createClient(TestService, transport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
        assert.equal((await client.unary({ text: "p" })).text, "p");
        for await (const r of client.serverStream({ text: "p", responseCount: 1 })) assert.equal(r.text, "p");
      }
      assert.equal(upstream.stats.reflectionStreams, 0);
      // The first JSON call is what fetches the schema.
      assert.equal((await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"j"}')).status, 200);
      assert.ok(upstream.stats.reflectionStreams > 0);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});

describe("schema with clusters and routes", () => {
  it("each cluster's upstream is reflected on its own; JSON calls routed to either are transcoded", async () => {
    const tests = await startSchemaUpstream({ reflection: true, reflectOnlyTestService: true });
    const wkt = await startSchemaUpstream({ reflection: true });
    const app = createBridge({
      clusters: [
        { name: "tests", endpoints: [tests.address] },
        { name: "wkt", endpoints: [wkt.address] },
      ],
      routes: [
        { service: "bridge.test.v1.WellKnownService", cluster: "wkt" },
        { service: "bridge.test.v1.TestService", cluster: "tests" },
      ],
      schema: { reflection: true },
    } as CreateBridgeOptions);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const bridge = { baseUrl: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` } as RunningBridge;
    try {
      const unary = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"routed"}');
      assert.deepEqual(JSON.parse(unary.body), { text: "routed" });
      const echo = await postJson(bridge, "/bridge.test.v1.WellKnownService/Echo", '{"duration":"2s"}');
      assert.deepEqual(JSON.parse(echo.body), { duration: "2s" });
      assert.ok(tests.stats.reflectionStreams > 0 && wkt.stats.reflectionStreams > 0, "each cluster fetched its own schema");
    } finally {
      await app.close();
      await Promise.all([tests.close(), wkt.close()]);
    }
  });
});

describe("reflection refetch on an unknown method", () => {
  it("a method the cached schema lacks refetches it, and a redeployed server's new service is transcoded", async () => {
    const upstream = await startSchemaUpstream({ reflection: true, reflectOnlyTestService: true });
    const log: { msg: string; method?: string }[] = [];
    const bridge = await startBridge(upstream.address, {
      schema: { reflection: { unknownMethodRefetchMs: 1 } },
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void log.push(JSON.parse(line)) } } },
    });
    try {
      assert.equal((await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"first"}')).status, 200);
      const before = await postJson(bridge, "/bridge.test.v1.WellKnownService/Echo", '{"plainInt64":"7"}');
      assert.equal(JSON.parse(before.body).code, "internal");
      assert.ok(
        log.some((w) => /has no schema for this method/.test(w.msg) && w.method === "/bridge.test.v1.WellKnownService/Echo"),
        "not in the schema yet: passed through as application/grpc+json (the log says so)",
      );
      upstream.reflectEverything();
      const after = await postJson(bridge, "/bridge.test.v1.WellKnownService/Echo", '{"plainInt64":"7"}');
      assert.equal(after.status, 200, after.body);
      assert.deepEqual(JSON.parse(after.body), { plainInt64: "7" });
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});

describe("a reflection service that never answers", () => {
  it("times out; the JSON call is passed through unaltered and the log names the timeout", async () => {
    // A node:http2 upstream whose reflection stream stays silent, and which
    // rejects everything else the way a proto-only server rejects JSON.
    const server = http2.createServer();
    const silent: http2.ServerHttp2Stream[] = [];
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      if (String(headers[":path"]).startsWith("/grpc.reflection.")) {
        stream.respond({ ":status": 200, "content-type": "application/grpc" });
        silent.push(stream);
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "13", "grpc-message": "cannot parse" }, { endStream: true });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const log: { msg: string; reflectionError?: string }[] = [];
    const bridge = await startBridge(`127.0.0.1:${(server.address() as AddressInfo).port}`, {
      schema: { reflection: { timeoutMs: 200 } },
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void log.push(JSON.parse(line)) } } },
    });
    try {
      const { body } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"x"}');
      assert.equal(JSON.parse(body).code, "internal");
      assert.equal(JSON.parse(body).message, "cannot parse", "the upstream's message, as it sent it");
      const hint = log.find((w) => /has no schema for this method/.test(w.msg));
      assert.match(hint?.reflectionError ?? "", /reflection of 127\.0\.0\.1:\d+ timed out after 200 ms/);
      assert.ok(silent.length > 0 && silent.every((stream) => stream.closed || stream.destroyed), "the timed-out reflection stream was reset");
    } finally {
      await bridge.close();
      server.close();
    }
  });
});

describe("reflection v1alpha fallback", () => {
  it("a server with only grpc.reflection.v1alpha still provides the schema", async () => {
    const upstream = await startSchemaUpstream({ reflection: true });
    upstream.stopReflection("v1");
    const bridge = await startBridge(upstream.address, { schema: { reflection: true } });
    try {
      const { status, body } = await postJson(bridge, "/bridge.test.v1.TestService/Unary", '{"text":"alpha"}');
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(body), { text: "alpha" });
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});

describe("reflection passthrough", () => {
  let upstream: SchemaUpstream;
  let closed: RunningBridge;
  let open: RunningBridge;
  before(async () => {
    upstream = await startSchemaUpstream({ reflection: true });
    closed = await startBridge(upstream.address);
    open = await startBridge(upstream.address, { reflectionPassthrough: true });
  });
  after(async () => {
    await closed.close();
    await open.close();
    await upstream.close();
  });

  it("is off by default: reflection calls are unimplemented from the bridge, so buf curl --reflect fails", async () => {
    // buf curl tries v1, then v1alpha; both unimplemented, it finds no service.
    await assert.rejects(
      run(buf, ["curl", "--protocol", "connect", "--reflect", "-d", "{}", `${closed.baseUrl}/bridge.test.v1.TestService/Unary`]),
      (error: { stderr: string }) => /failed to find service named "bridge\.test\.v1\.TestService"/.test(error.stderr),
    );
    const { body } = await curl(
      "-H", "content-type: application/connect+json", "--data-binary", "",
      `${closed.baseUrl}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`,
    );
    assert.match(body, /server reflection is not served through this bridge/);
    // Native gRPC (h2c) is gated the same way.
    await assert.rejects(
      run(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "-d", "{}", `${closed.baseUrl}/bridge.test.v1.TestService/Unary`]),
      (error: { stderr: string }) => /failed to find service named/.test(error.stderr),
    );
    assert.equal(upstream.stats.reflectionStreams, 0, "no reflection call reached the upstream");
  });

  it("on, buf curl --reflect works through the bridge with --protocol connect and grpcweb", async () => {
    for (const protocol of ["connect", "grpcweb"]) {
      const { stdout } = await run(buf, ["curl", "--protocol", protocol, "--reflect", "-d", '{"text":"reflected"}', `${open.baseUrl}/bridge.test.v1.TestService/Unary`]);
      assert.deepEqual(JSON.parse(stdout), { text: "reflected" });
    }
  });
});

describe("schema options", () => {
  it("a descriptor set that cannot be read fails the start, naming the file", async () => {
    await assert.rejects(startBridge("127.0.0.1:1", { schema: { descriptorSets: ["/nonexistent/schema.binpb"] } }), /descriptor set "\/nonexistent\/schema\.binpb"/);
  });

  it("a bad reflection option is a TypeError naming it", () => {
    assert.throws(() => resolveOptions({ upstream: "127.0.0.1:1", schema: { reflection: "yes" as never } }), /"schema\.reflection" must be a boolean or an object/);
    assert.throws(
      () => resolveOptions({ upstream: "127.0.0.1:1", schema: { reflection: { refreshIntervalMs: -1 } } }),
      /"schema\.reflection\.refreshIntervalMs" must be a positive integer, got -1/,
    );
  });

  it("allowGetForAllMethods accepts GET for a method without NO_SIDE_EFFECTS", async () => {
    const upstream = await startSchemaUpstream({ reflection: false });
    const bridge = await startBridge(upstream.address, { schema: { descriptorSets: [descriptorSet], allowGetForAllMethods: true } });
    try {
      const { status, body } = await curl(`${bridge.baseUrl}/bridge.test.v1.WellKnownService/Echo?encoding=json&message=${encodeURIComponent('{"plainInt64":"3"}')}`);
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(body), { plainInt64: "3" });
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });

  it("bytes that are not a descriptor set fail the start", async () => {
    await assert.rejects(startBridge("127.0.0.1:1", { schema: { descriptorSets: [new Uint8Array([0xff, 0xff])] } }), /not a valid FileDescriptorSet/);
  });
});

describe("schema in the config layer", () => {
  it("config file keys, environment variables and flags, with the usual precedence and errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-schema-config-"));
    const file = join(dir, "bridge.yaml");
    writeFileSync(file, "upstream: 127.0.0.1:1\nschema:\n  descriptorSets: [a.binpb]\n  reflection: { refreshIntervalMs: 1000 }\nreflectionPassthrough: true\n");
    const fromFile = loadConfig({ config: file }, {}).config;
    assert.deepEqual(fromFile.schema, { descriptorSets: ["a.binpb"], reflection: { refreshIntervalMs: 1000 } });
    assert.equal(fromFile.reflectionPassthrough, true);
    const fromEnv = loadConfig({ config: file }, { CONNECT_GRPC_BRIDGE_DESCRIPTOR_SETS: "b.binpb,c.binpb", CONNECT_GRPC_BRIDGE_REFLECTION: "false" }).config;
    assert.deepEqual(fromEnv.schema, { descriptorSets: ["b.binpb", "c.binpb"], reflection: false });
    const fromFlags = loadConfig({ config: file, "descriptor-set": ["d.binpb"], reflection: true }, { CONNECT_GRPC_BRIDGE_REFLECTION: "false" }).config;
    assert.deepEqual(fromFlags.schema, { descriptorSets: ["d.binpb"], reflection: true });
    assert.equal(loadConfig({ upstream: "127.0.0.1:1" }, {}).config.reflectionPassthrough, resolveOptions({ upstream: "127.0.0.1:1" }).reflectionPassthrough);
    assert.throws(() => loadConfig({ upstream: "127.0.0.1:1" }, { CONNECT_GRPC_BRIDGE_REFLECTION: "maybe" }), (e: Error) => /CONNECT_GRPC_BRIDGE_REFLECTION/.test(e.message));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("CLI schema flags", () => {
  it("--descriptor-set and --reflection transcode curl JSON; --reflection-passthrough lets buf curl --reflect through", async () => {
    const upstream = await startSchemaUpstream({ reflection: true });
    const cli = new URL("../../src/cli.js", import.meta.url).pathname;
    const flagSets = [["--descriptor-set", descriptorSet], ["--reflection", "--reflection-passthrough"]];
    const help = await run(process.execPath, [cli, "--help"]);
    for (const flag of ["--descriptor-set", "--reflection", "--reflection-passthrough"]) assert.ok(help.stdout.includes(flag), flag);
    try {
      for (const flags of flagSets) {
        const child = spawn(process.execPath, [cli, "--upstream", upstream.address, "--port", "0", "--log-level", "silent", ...flags], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CONNECT_GRPC_BRIDGE_DRAIN_DELAY_MS: "0" } });
        try {
          let out = "";
          child.stdout.on("data", (d) => (out += d));
          while (!/listening on http:\/\/\S+:\d+/.test(out)) await once(child.stdout, "data");
          const baseUrl = /listening on (http:\/\/\S+:\d+)/.exec(out)![1];
          const { status, body } = await curl("-H", "content-type: application/json", "-d", '{"text":"cli"}', `${baseUrl}/bridge.test.v1.TestService/Unary`);
          assert.equal(status, 200, body);
          assert.deepEqual(JSON.parse(body), { text: "cli" });
          if (flags.includes("--reflection-passthrough")) {
            const { stdout } = await run(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "-d", '{"text":"h2"}', `${baseUrl}/bridge.test.v1.TestService/Unary`]);
            assert.deepEqual(JSON.parse(stdout), { text: "h2" });
          }
        } finally {
          child.kill("SIGTERM");
          await once(child, "exit");
        }
      }
    } finally {
      await upstream.close();
    }
  });
});
