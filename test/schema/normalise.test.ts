/**
 * The descriptor normaliser: protoc's scoping rules for relative type names,
 * protobufjs's map entries, proto3 optional and well-known-type copies, and
 * files that cannot be used (named, with the reason, costing only themselves).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type DescFile, type MessageInitShape } from "@bufbuild/protobuf";
import { file_google_protobuf_timestamp, FileDescriptorProtoSchema, FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as Type } from "@bufbuild/protobuf/wkt";
import * as protoLoader from "@grpc/proto-loader";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normaliseFiles, SymbolTable, mapEntryName } from "../../src/schema/normalise.js";
import { registryFromFiles } from "../../src/schema/files.js";

type FileInit = MessageInitShape<typeof FileDescriptorProtoSchema>;
const file = (init: FileInit) => create(FileDescriptorProtoSchema, { syntax: "proto3", ...init });
const field = (name: string, number: number, typeName: string, type = Type.MESSAGE) => ({ name, number, type, typeName, label: Label.OPTIONAL });

function table(...files: FileInit[]): SymbolTable {
  const symbols = new SymbolTable();
  for (const f of files) assert.equal(symbols.add(file(f)), undefined);
  return symbols;
}

function resolved(symbols: SymbolTable, name: string, scope: string): string {
  const result = symbols.resolve(name, scope);
  assert.ok("name" in result, "error" in result ? result.error : "");
  return result.name;
}

describe("relative type names resolve by protoc's scoping rules", () => {
  const symbols = table(
    {
      name: "a/b/outer.proto",
      package: "a.b",
      messageType: [
        {
          name: "Outer",
          nestedType: [{ name: "Inner" }, { name: "Mid", nestedType: [{ name: "Inner" }] }],
          enumType: [{ name: "Level" }],
        },
        { name: "Foo", nestedType: [{ name: "Baz" }] },
      ],
      service: [{ name: "Thing" }],
    },
    { name: "a/top.proto", package: "a", messageType: [{ name: "Top" }, { name: "Inner" }] },
    { name: "root.proto", package: "", messageType: [{ name: "Thing" }, { name: "Foo", nestedType: [{ name: "Bar" }] }] },
  );

  it("the innermost scope that declares the name wins", () => {
    assert.equal(resolved(symbols, "Inner", "a.b.Outer.Mid"), ".a.b.Outer.Mid.Inner");
    assert.equal(resolved(symbols, "Inner", "a.b.Outer"), ".a.b.Outer.Inner");
    assert.equal(resolved(symbols, "Level", "a.b.Outer.Mid"), ".a.b.Outer.Level");
  });

  it("goes out package by package, into other files", () => {
    assert.equal(resolved(symbols, "Top", "a.b.Outer"), ".a.Top");
    assert.equal(resolved(symbols, "Inner", "a.b"), ".a.Inner");
  });

  it("a partly qualified name starts from the first scope that has its first component", () => {
    assert.equal(resolved(symbols, "Outer.Mid.Inner", "a.b.Foo"), ".a.b.Outer.Mid.Inner");
    assert.equal(resolved(symbols, "b.Outer", "a.b.Outer"), ".a.b.Outer");
    assert.equal(resolved(symbols, "a.Top", "a.b.Outer.Mid"), ".a.Top");
  });

  it("once the first component names an aggregate, the rest must be in it (protoc does not look further out)", () => {
    // .Foo.Bar exists, but a.b.Foo is found first and has no Bar.
    const result = symbols.resolve("Foo.Bar", "a.b.Outer");
    assert.ok("error" in result);
    assert.match(result.error, /resolved to "a\.b\.Foo", which has no "Bar"/);
    assert.equal(resolved(symbols, "Foo.Baz", "a.b.Outer"), ".a.b.Foo.Baz");
    assert.equal(resolved(symbols, ".Foo.Bar", "a.b.Outer"), ".Foo.Bar");
  });

  it("a name that is not a type (a service) does not stop the search for a type", () => {
    assert.equal(resolved(symbols, "Thing", "a.b.Outer"), ".Thing");
  });

  it("absolute names are taken as they are, and must exist", () => {
    assert.equal(resolved(symbols, ".a.b.Outer.Inner", "x"), ".a.b.Outer.Inner");
    const result = symbols.resolve(".a.b.Nope", "a.b");
    assert.ok("error" in result && /"\.a\.b\.Nope" is not defined/.test(result.error));
  });

  it("an unknown name says where it looked from", () => {
    const result = symbols.resolve("Nope", "a.b.Outer");
    assert.ok("error" in result);
    assert.equal(result.error, `type "Nope" is not defined (looked from a.b.Outer outwards)`);
  });
});

describe("normaliseFiles", () => {
  it("resolves every reference, lists the files they point to as dependencies, and sets json_name as protoc does", () => {
    const { broken } = normaliseFiles(
      [
        file({ name: "b.proto", package: "p.q", messageType: [{ name: "B", field: [{ ...field("user_id", 1, "", Type.STRING) }] }] }),
        file({
          name: "a.proto",
          package: "p",
          messageType: [{ name: "A", field: [field("b", 1, "q.B"), field("at", 2, "google.protobuf.Timestamp"), { ...field("untyped", 3, "A"), type: undefined }] }],
          service: [{ name: "S", method: [{ name: "M", inputType: "A", outputType: ".p.q.B" }] }],
        }),
      ],
      new Map(),
    );
    assert.deepEqual(broken.map((b) => b.name), ["a.proto"], "no bundled files given: the Timestamp is unknown");
    const withWkt = normaliseFiles(
      [
        file({ name: "b.proto", package: "p.q", messageType: [{ name: "B", field: [{ ...field("user_id", 1, "", Type.STRING) }] }] }),
        file({
          name: "a.proto",
          package: "p",
          messageType: [{ name: "A", field: [field("b", 1, "q.B"), field("at", 2, "google.protobuf.Timestamp"), { ...field("untyped", 3, "A"), type: undefined }] }],
          service: [{ name: "S", method: [{ name: "M", inputType: "A", outputType: ".p.q.B" }] }],
        }),
      ],
      bundledForTest(),
    );
    assert.deepEqual(withWkt.broken, []);
    const a = withWkt.files.find((f) => f.name === "a.proto")!;
    assert.deepEqual(a.messageType[0]!.field.map((f) => f.typeName), [".p.q.B", ".google.protobuf.Timestamp", ".p.A"]);
    assert.equal(a.messageType[0]!.field[2]!.type, Type.MESSAGE, "a type_name without a type gets the kind it names");
    assert.deepEqual(a.dependency, ["b.proto", "google/protobuf/timestamp.proto"]);
    assert.deepEqual([a.service[0]!.method[0]!.inputType, a.service[0]!.method[0]!.outputType], [".p.A", ".p.q.B"]);
    assert.equal(withWkt.files.find((f) => f.name === "b.proto")!.messageType[0]!.field[0]!.jsonName, "userId");
  });

  it("renames protobufjs's map entries as protoc does, also next to a message of the entry's old name", () => {
    const entry = { name: "Headers", field: [field("key", 1, "", Type.STRING), field("value", 2, "", Type.STRING)], options: { mapEntry: true } };
    const { files, broken } = normaliseFiles(
      [
        file({
          name: "m.proto",
          package: "m",
          messageType: [
            {
              name: "Msg",
              field: [{ ...field("headers", 1, "Headers"), label: Label.REPEATED }, field("own", 2, "Headers"), { ...field("nested_by_id", 3, "Nested_by_id"), label: Label.REPEATED }],
              // proto-loader with keepCase: true names the entry ucFirst("nested_by_id").
              nestedType: [entry, { name: "Headers" }, { ...entry, name: "Nested_by_id" }],
            },
          ],
        }),
      ],
      new Map(),
    );
    assert.deepEqual(broken, []);
    const msg = files[0]!.messageType[0]!;
    assert.deepEqual(msg.nestedType.map((t) => t.name), ["HeadersEntry", "Headers", "NestedByIdEntry"]);
    assert.deepEqual(msg.field.map((f) => f.typeName), [".m.Msg.HeadersEntry", ".m.Msg.Headers", ".m.Msg.NestedByIdEntry"]);
    assert.equal(mapEntryName("nested_by_id"), "NestedByIdEntry");
    assert.equal(mapEntryName("nestedById"), "NestedByIdEntry");
  });

  it("restores proto3_optional for a field alone in its synthetic oneof, not for a real one-member oneof", () => {
    const { files } = normaliseFiles(
      [
        file({
          name: "o.proto",
          package: "o",
          messageType: [
            {
              name: "O",
              field: [
                { ...field("maybe", 1, "", Type.INT32), oneofIndex: 1 },
                { ...field("only", 2, "", Type.INT32), oneofIndex: 0 },
                field("plain", 3, "", Type.INT32),
              ],
              oneofDecl: [{ name: "choice" }, { name: "_maybe" }],
            },
          ],
        }),
      ],
      new Map(),
    );
    assert.deepEqual(files[0]!.messageType[0]!.field.map((f) => f.proto3Optional), [true, false, false]);
  });

  it("a file that cannot be used is named with the reason, and so is a file importing it; the others stay", () => {
    const { files, broken } = normaliseFiles(
      [
        file({ name: "bad.proto", package: "bad", messageType: [{ name: "X", field: [field("y", 1, "Missing")] }], service: [{ name: "BadService" }] }),
        file({ name: "user.proto", package: "user", dependency: ["bad.proto"], messageType: [{ name: "U", field: [field("x", 1, "bad.X")] }] }),
        file({ name: "good.proto", package: "good", messageType: [{ name: "G" }] }),
      ],
      new Map(),
    );
    assert.deepEqual(files.map((f) => f.name), ["good.proto"]);
    assert.deepEqual(broken, [
      { name: "bad.proto", reason: `field bad.X.y: type "Missing" is not defined (looked from bad.X outwards)`, services: ["bad.BadService"] },
      { name: "user.proto", reason: `it imports "bad.proto", which cannot be used: field bad.X.y: type "Missing" is not defined (looked from bad.X outwards)`, services: [] },
    ]);
  });

  it("an import cycle (protobufjs merges a package's files, so two packages can import each other) is named, and costs only the files in it", () => {
    const { registry, broken } = registryFromFiles(
      [
        file({ name: "a.proto", package: "a", messageType: [{ name: "A", field: [field("b", 1, "b.B")] }], service: [{ name: "AService" }] }),
        file({ name: "b.proto", package: "b", messageType: [{ name: "B", field: [field("a", 1, "a.A")] }] }),
        file({ name: "c.proto", package: "c", messageType: [{ name: "C" }] }),
      ],
      "test",
    );
    assert.deepEqual(broken.map((b) => b.name).sort(), ["a.proto", "b.proto"]);
    assert.match(broken.find((b) => b.name === "a.proto")!.reason, /import cycle through "a\.proto"/);
    assert.deepEqual(broken.find((b) => b.name === "a.proto")!.services, ["a.AService"]);
    assert.ok(registry.getMessage("c.C"));
  });

  it("a relative name that several enclosing scopes declare is ambiguous (protobufjs writes Inner for an outer Inner it shadows): the file is unusable, not guessed at", () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-shadow-"));
    try {
      writeFileSync(
        join(dir, "shadow.proto"),
        `syntax = "proto3"; package s;
         message Outer {
           message Inner { int32 x = 1; }
           message Mid { message Inner { string y = 1; } Outer.Inner outer_inner = 1; }
           Inner plain = 1;
         }
         service Shadow { rpc Call(Outer) returns (Outer); }`,
      );
      const definition = protoLoader.loadSync("shadow.proto", { includeDirs: [dir] });
      const served = (Object.values(definition).find((d) => "fileDescriptorProtos" in d) as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos.map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
      assert.equal(served[0]!.messageType[0]!.nestedType[1]!.field[0]!.typeName, "Inner", "protobufjs dropped the qualifier");
      const { broken } = normaliseFiles(served, new Map());
      assert.equal(broken.length, 1);
      assert.deepEqual(broken[0]!.services, ["s.Shadow"]);
      assert.equal(
        broken[0]!.reason,
        `field s.Outer.Mid.outerInner: type "Inner" is ambiguous in a descriptor with relative names: it may be s.Outer.Mid.Inner or s.Outer.Inner ` +
          `(protobufjs shortens names so; give the reflection server protoc- or buf-built descriptors)`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an enum and a message of the same name are not ambiguous for a field whose type says which it is", () => {
    const { broken, files } = normaliseFiles(
      [
        file({
          name: "k.proto",
          package: "k",
          messageType: [{ name: "M", enumType: [{ name: "Status", value: [{ name: "S0", number: 0 }] }], field: [field("status", 1, "Status", Type.ENUM)] }, { name: "Status" }],
        }),
      ],
      new Map(),
    );
    assert.deepEqual(broken, []);
    assert.equal(files[0]!.messageType[0]!.field[0]!.typeName, ".k.M.Status");
  });

  it("a type declared by two files costs the second one", () => {
    const { files, broken } = normaliseFiles(
      [file({ name: "one.proto", package: "d", messageType: [{ name: "Dup" }] }), file({ name: "two.proto", package: "d", messageType: [{ name: "Dup" }] })],
      new Map(),
    );
    assert.deepEqual(files.map((f) => f.name), ["one.proto"]);
    assert.equal(broken[0]!.reason, `it declares d.Dup (also declared in "one.proto")`);
  });

  it("leaves protoc-built descriptors as they are", () => {
    const protoc = file({
      name: "p.proto",
      package: "p",
      dependency: ["google/protobuf/timestamp.proto"],
      messageType: [{ name: "P", field: [{ ...field("at", 1, ".google.protobuf.Timestamp"), jsonName: "at" }] }],
    });
    const { files } = normaliseFiles([protoc], bundledForTest());
    assert.deepEqual(toBinary(FileDescriptorProtoSchema, files[0]!), toBinary(FileDescriptorProtoSchema, protoc));
  });
});

describe("registryFromFiles over what @grpc/proto-loader builds (the descriptors @grpc/reflection serves)", () => {
  const definition = protoLoader.loadSync("bridge/test/reflect/v1/shapes.proto", { includeDirs: [new URL("../../../proto", import.meta.url).pathname] });
  const served = (Object.values(definition).find((d) => "fileDescriptorProtos" in d) as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos.map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );

  it("every file is usable, protobufjs's well-known-type copy is replaced by the bundled files", () => {
    assert.ok(served.some((f) => f.name === "google_protobuf.proto"), "protobufjs still serves its merged WKT file");
    const { registry, broken } = registryFromFiles(served, "test");
    assert.deepEqual(broken, []);
    assert.equal(registry.getFile("google_protobuf"), undefined);
    const shape = registry.getMessage("bridge.test.reflect.v1.Shape")!;
    assert.equal(shape.field.at!.message!.file.name, "google/protobuf/timestamp");
    assert.equal(shape.field.headers!.fieldKind, "map");
    assert.equal(shape.field.maybe!.presence, 1 /* EXPLICIT */);
    assert.equal(shape.field.userId!.jsonName, "userId");
    assert.equal(registry.getMessage("bridge.test.reflect.v1.Shape.Nested.Inner")!.field.level!.enum!.typeName, "bridge.test.reflect.v1.Shape.Nested.Level");
  });

  it("a file protobuf-es rejects after normalising is reported with a reason, never an empty message", () => {
    // A map entry whose key is a message: protobuf-es asserts without a message.
    const bad = file({
      name: "bad.proto",
      package: "bad",
      messageType: [
        {
          name: "B",
          field: [{ ...field("m", 1, "MEntry"), label: Label.REPEATED }],
          nestedType: [{ name: "MEntry", field: [field("key", 1, "B"), field("value", 2, "", Type.STRING)], options: { mapEntry: true } }],
        },
      ],
      service: [{ name: "BadService", method: [{ name: "Call", inputType: "B", outputType: "B" }] }],
    });
    const { registry, broken } = registryFromFiles([...served, bad], "reflection of test");
    assert.equal(broken.length, 1);
    assert.equal(broken[0]!.name, "bad.proto");
    assert.deepEqual(broken[0]!.services, ["bad.BadService"]);
    assert.match(broken[0]!.reason, /^reflection of test: file "bad\.proto" cannot be used: \S/);
    assert.ok(registry.getMessage("bridge.test.reflect.v1.Shape"), "the other files still load");
  });
});

function bundledForTest(): Map<string, DescFile> {
  return new Map([[file_google_protobuf_timestamp.proto.name, file_google_protobuf_timestamp]]);
}
