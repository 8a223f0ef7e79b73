/**
 * JSON through server reflection, against the reflection servers people run:
 * @grpc/grpc-js + @grpc/proto-loader + @grpc/reflection (protobufjs-built
 * descriptors: relative names, per-package files, no dependencies, map
 * entries named after the field), with proto-loader's default camelCase
 * field names and with keepCase, and the same server reflecting buf's
 * descriptors (as protoc-based servers do). Every JSON answer must be
 * byte-exactly what the same call in binary (application/proto) through the
 * bridge gives, converted with the generated code; the upstream must receive
 * the same bytes for both.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { Kind, RenamedSchema, ShapeSchema, ShapeService, Shape_Nested_Level, type Shape } from "../../gen/bridge/test/reflect/v1/shapes_pb.js";
import { Unit } from "../../gen/bridge/test/reflect/v1/units/units_pb.js";
import { startReflectionUpstream, type ReflectedDescriptors, type ReflectionUpstream } from "../support/reflection-upstream.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { envelope, splitFrames } from "../support/raw-http.js";

/** A Shape with every field set, several to values JSON writes specially. */
function shape(repeat = 0): Shape {
  return create(ShapeSchema, {
    userId: "u-1",
    createdMs: 9007199254740993n,
    kind: Kind.CIRCLE,
    nested: {
      label: "outer",
      level: Shape_Nested_Level.HIGH,
      children: [{ label: "child", inner: { blob: new Uint8Array([0, 255]), level: Shape_Nested_Level.HIGH } }],
      kind: Kind.SQUARE,
    },
    headers: { "x-a": "1", "x-b": "" },
    nestedById: { 7: { label: "seven" }, [-1]: { label: "minus" } },
    kinds: { c: Kind.CIRCLE },
    choice: { case: "innerChoice", value: { blob: new Uint8Array([1, 2, 3]) } },
    numbers: [1, -2, 300000],
    tags: ["a", "b"],
    levels: [Shape_Nested_Level.HIGH, Shape_Nested_Level.UNSPECIFIED],
    maybe: 0,
    at: timestampFromMs(1_700_000_000_123),
    ttl: { seconds: 90n, nanos: 5_000_000 },
    extra: { name: "x", list: [1, "two", null, true], nested: { deep: 1.5 } },
    wrappedCount: 0,
    wrappedName: "w",
    anyValue: { kind: { case: "numberValue", value: 2.5 } },
    price: { currencyCode: "EUR", units: -3n, nanos: 500 },
    history: [{ currencyCode: "USD", units: 1n }, {}],
    unit: Unit.METRE,
    ratio: 0.1,
    repeat,
  });
}

const variants: ReflectedDescriptors[] = ["proto-loader", "proto-loader-keep-case", "buf"];

for (const descriptors of variants) {
  describe(`JSON via reflection from @grpc/reflection serving ${descriptors} descriptors is byte-exact with binary calls`, () => {
    let upstream: ReflectionUpstream;
    let bridge: RunningBridge;
    const warnings: { msg: string }[] = [];

    before(async () => {
      upstream = await startReflectionUpstream(descriptors);
      bridge = await startBridge(upstream.address, {
        schema: { reflection: true },
        fastify: { logger: { level: "warn", stream: { write: (line: string) => void warnings.push(JSON.parse(line)) } } },
      });
    });
    after(async () => {
      await bridge.close();
      await upstream.close();
    });

    const post = (path: string, contentType: string, body: Uint8Array | string) =>
      fetch(`${bridge.baseUrl}/bridge.test.reflect.v1.ShapeService/${path}`, { method: "POST", headers: { "content-type": contentType }, body: typeof body === "string" ? body : new Uint8Array(body) });

    it("Connect unary POST: the upstream gets the binary call's bytes, the client the binary answer as JSON", async () => {
      const sent = shape();
      upstream.received.length = 0;
      const binary = await post("Get", "application/proto", toBinary(ShapeSchema, sent));
      assert.equal(binary.status, 200);
      const binaryAnswer = new Uint8Array(await binary.arrayBuffer());
      const json = await post("Get", "application/json", toJsonString(ShapeSchema, sent));
      const body = await json.text();
      assert.equal(json.status, 200, body);
      assert.equal(upstream.received.length, 2);
      assert.deepEqual(upstream.received[1], upstream.received[0], "the JSON call reached the upstream as the same bytes");
      assert.deepEqual(upstream.received[0], Buffer.from(toBinary(ShapeSchema, sent)));
      assert.equal(body, toJsonString(ShapeSchema, fromBinary(ShapeSchema, binaryAnswer)));
      assert.deepEqual(warnings, [], "nothing was logged as unusable");
    });

    it("Connect GET (NO_SIDE_EFFECTS): JSON and base64 proto give the same answer", async () => {
      const sent = shape();
      const base = `${bridge.baseUrl}/bridge.test.reflect.v1.ShapeService/Get?connect=v1`;
      const binary = await fetch(`${base}&encoding=proto&base64=1&message=${Buffer.from(toBinary(ShapeSchema, sent)).toString("base64url")}`);
      assert.equal(binary.status, 200);
      const json = await fetch(`${base}&encoding=json&message=${encodeURIComponent(toJsonString(ShapeSchema, sent))}`);
      const body = await json.text();
      assert.equal(json.status, 200, body);
      assert.equal(body, toJsonString(ShapeSchema, fromBinary(ShapeSchema, new Uint8Array(await binary.arrayBuffer()))));
    });

    it("Connect server streaming: each JSON message is the binary stream's message as JSON", async () => {
      const sent = shape(3);
      const frames = async (codec: string, message: Uint8Array) => {
        const response = await post("List", `application/connect+${codec}`, new Uint8Array(envelope(0, message)));
        assert.equal(response.status, 200);
        return splitFrames(Buffer.from(await response.arrayBuffer()));
      };
      const binary = await frames("proto", toBinary(ShapeSchema, sent));
      const json = await frames("json", Buffer.from(toJsonString(ShapeSchema, sent)));
      assert.equal(binary.length, 4, "three messages and the end-of-stream");
      assert.deepEqual(
        json.slice(0, 3).map((f) => f.data.toString()),
        binary.slice(0, 3).map((f) => toJsonString(ShapeSchema, fromBinary(ShapeSchema, f.data))),
      );
      assert.deepEqual(JSON.parse(json[3]!.data.toString()), {});
    });

    it("connect-node's JSON client gets its message back", async () => {
      const client = createClient(ShapeService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "2", useBinaryFormat: false }));
      const sent = shape(2);
      assert.equal(toJsonString(ShapeSchema, await client.get(sent)), toJsonString(ShapeSchema, sent));
      const streamed: string[] = [];
      for await (const answer of client.list(sent)) streamed.push(answer.userId);
      assert.deepEqual(streamed, ["u-1", "u-1"]);
    });

    // The two things protobufjs-built descriptors cannot give back (README, "JSON for proto-only servers").
    it(`JSON input by the .proto's own field names (user_id) is ${descriptors === "proto-loader" ? "refused: the server serves only userId" : "accepted"}`, async () => {
      const response = await post("Get", "application/json", '{"user_id":"snake"}');
      const body = JSON.parse(await response.text());
      if (descriptors === "proto-loader") {
        assert.equal(response.status, 400);
        assert.equal(body.code, "invalid_argument");
        assert.match(body.message, /user_id/);
      } else {
        assert.equal(response.status, 200);
        assert.deepEqual(body, { userId: "snake" });
      }
    });

    it(`a json_name set in the .proto is ${descriptors === "buf" ? "used" : "lost (protobufjs drops it): the lowerCamel name is used"}`, async () => {
      const name = descriptors === "buf" ? "custom" : "originalName";
      const response = await post("Rename", "application/json", JSON.stringify({ [name]: "r" }));
      assert.equal(response.status, 200);
      assert.equal(await response.text(), JSON.stringify({ [name]: "r" }));
      assert.deepEqual(upstream.received.at(-1), Buffer.from(toBinary(RenamedSchema, create(RenamedSchema, { originalName: "r" }))));
    });
  });
}

describe("regression: JSON through @grpc/reflection over proto-loader descriptors answered internal \"server reflection failed: \" with nothing after the colon", () => {
  it("the JSON call is answered by the upstream, with no reflection failure logged", async () => {
    const upstream = await startReflectionUpstream("proto-loader");
    const log: { msg: string }[] = [];
    const bridge = await startBridge(upstream.address, {
      schema: { reflection: true },
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void log.push(JSON.parse(line)) } } },
    });
    try {
      const response = await fetch(`${bridge.baseUrl}/bridge.test.reflect.v1.ShapeService/Get`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"userId":"x","headers":{"a":"b"},"nested":{"label":"n"}}',
      });
      assert.equal(await response.text(), '{"userId":"x","nested":{"label":"n"},"headers":{"a":"b"}}');
      assert.equal(response.status, 200);
      assert.deepEqual(log, []);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});

describe("a reflected file that cannot be used", () => {
  // A service whose file names a type nobody declares, next to the working ShapeService.
  const broken = create(FileDescriptorProtoSchema, {
    name: "broken/v1/broken.proto",
    package: "broken.v1",
    syntax: "proto3",
    messageType: [{ name: "Req", field: [{ name: "thing", number: 1, label: 1, type: 11, typeName: "Missing" }] }],
    service: [{ name: "BrokenService", method: [{ name: "Call", inputType: ".broken.v1.Req", outputType: ".broken.v1.Req" }] }],
  });
  // A file importing one the server does not have (its fileByFilename answers NOT_FOUND).
  const orphan = create(FileDescriptorProtoSchema, {
    name: "orphan/v1/orphan.proto",
    package: "orphan.v1",
    syntax: "proto3",
    dependency: ["gone/v1/gone.proto"],
    messageType: [{ name: "Req", field: [{ name: "gone", number: 1, label: 1, type: 11, typeName: ".gone.v1.Gone" }] }],
    service: [{ name: "OrphanService", method: [{ name: "Call", inputType: ".orphan.v1.Req", outputType: ".orphan.v1.Req" }] }],
  });
  const raw = (b: Buffer) => b;
  let upstream: ReflectionUpstream;
  let bridge: RunningBridge;
  const log: { msg: string; file?: string; reason?: string }[] = [];

  before(async () => {
    upstream = await startReflectionUpstream("proto-loader", {
      definition: {
        call: { path: "/broken.v1.BrokenService/Call", requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
      } as grpc.ServiceDefinition,
      implementation: { call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request) },
      reflected: {
        "broken.v1.BrokenService": { fileDescriptorProtos: [Buffer.from(toBinary(FileDescriptorProtoSchema, broken))] },
        "orphan.v1.OrphanService": { fileDescriptorProtos: [Buffer.from(toBinary(FileDescriptorProtoSchema, orphan))] },
      },
    });
    bridge = await startBridge(upstream.address, {
      schema: { reflection: true },
      fastify: { logger: { level: "warn", stream: { write: (line: string) => void log.push(JSON.parse(line)) } } },
    });
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
  });

  it("is logged once by name with the reason; the other services keep working; its JSON calls say which file and why; binary calls pass", async () => {
    const good = await fetch(`${bridge.baseUrl}/bridge.test.reflect.v1.ShapeService/Get`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"userId":"ok"}' });
    assert.equal(await good.text(), '{"userId":"ok"}');
    const json = await fetch(`${bridge.baseUrl}/broken.v1.BrokenService/Call`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(json.status, 500);
    const error = JSON.parse(await json.text());
    assert.equal(error.code, "internal");
    assert.equal(
      error.message,
      `cannot transcode /broken.v1.BrokenService/Call to JSON: reflection of ${upstream.address}: file "broken/v1/broken.proto" cannot be used: field broken.v1.Req.thing: type "Missing" is not defined (looked from broken.v1.Req outwards)`,
    );
    const binary = await fetch(`${bridge.baseUrl}/broken.v1.BrokenService/Call`, { method: "POST", headers: { "content-type": "application/proto" }, body: new Uint8Array([10, 0]) });
    assert.equal(binary.status, 200);
    assert.deepEqual(new Uint8Array(await binary.arrayBuffer()), new Uint8Array([10, 0]));
    const reported = log.filter((line) => line.msg === "schema file from server reflection cannot be used");
    assert.deepEqual(reported.map((line) => line.file).sort(), ["broken/v1/broken.proto", "orphan/v1/orphan.proto"]);
    assert.match(reported.find((line) => line.file === "broken/v1/broken.proto")!.reason!, /type "Missing" is not defined/);
  });

  it("an import the server cannot send costs only the importing file, which the JSON error names with the server's answer", async () => {
    const json = await fetch(`${bridge.baseUrl}/orphan.v1.OrphanService/Call`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(json.status, 500);
    assert.equal(
      JSON.parse(await json.text()).message,
      `cannot transcode /orphan.v1.OrphanService/Call to JSON: reflection of ${upstream.address}: file "orphan/v1/orphan.proto" cannot be used: ` +
        `it imports "gone/v1/gone.proto", which is missing: reflection of ${upstream.address}: file gone/v1/gone.proto: error 5 Proto file not found: gone/v1/gone.proto`,
    );
    const good = await fetch(`${bridge.baseUrl}/bridge.test.reflect.v1.ShapeService/Get`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"kind":"KIND_SQUARE"}' });
    assert.equal(await good.text(), '{"kind":"KIND_SQUARE"}');
  });
});
