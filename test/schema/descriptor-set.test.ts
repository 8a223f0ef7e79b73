/**
 * Descriptor sets go through the same normalisation as reflection, but a
 * file that cannot be used fails the start (it is configuration), naming
 * the set, the file and why.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { loadDescriptorSet } from "../../src/schema/descriptor-set.js";
import { loadShapes } from "../support/reflection-upstream.js";

const setOf = (...file: ReturnType<typeof create<typeof FileDescriptorProtoSchema>>[]) => toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file }));

describe("loadDescriptorSet", () => {
  it("loads a set of protobufjs-built descriptors (relative names, no imports listed)", () => {
    const served = (Object.values(loadShapes(false)).find((d) => "fileDescriptorProtos" in d) as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos;
    const registry = loadDescriptorSet(setOf(...served.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes))), 0);
    assert.equal(registry.getService("bridge.test.reflect.v1.ShapeService")?.methods.length, 3);
  });

  it("fails with the set, the file and the missing import", () => {
    const orphan = create(FileDescriptorProtoSchema, { name: "orphan.proto", package: "o", syntax: "proto3", dependency: ["gone.proto"], messageType: [{ name: "O" }] });
    assert.throws(
      () => loadDescriptorSet(setOf(orphan), 2),
      {
        message:
          'connect-grpc-bridge: descriptor set #2 (bytes): file "orphan.proto" cannot be used: it imports "gone.proto", which is missing (a descriptor set needs its imports: buf build, or protoc --include_imports)',
      },
    );
  });

  it("fails with the file and the type it cannot resolve", () => {
    const bad = create(FileDescriptorProtoSchema, {
      name: "bad.proto",
      package: "b",
      syntax: "proto3",
      messageType: [{ name: "B", field: [{ name: "x", number: 1, label: 1, type: 11, typeName: "Nowhere" }] }],
    });
    assert.throws(() => loadDescriptorSet(setOf(bad), 0), /file "bad\.proto" cannot be used: field b\.B\.x: type "Nowhere" is not defined/);
  });
});
