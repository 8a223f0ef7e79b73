/**
 * JSON Schemas of messages: checked against the JSON protobuf-es itself
 * writes for real messages (what the bridge sends), and against JSON a
 * proto3 parser refuses or that breaks a rule the schema states (oneofs).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, createRegistry, toJson, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { anyPack, timestampFromDate, DurationSchema, StructSchema } from "@bufbuild/protobuf/wkt";
import { SchemaComponents, type JsonSchema } from "../../src/openapi/json-schema.js";
import { buildRegistry, componentValidators } from "../support/openapi.js";

const registry: FileRegistry = await buildRegistry("test/openapi/protos");
const message = (name: string): DescMessage => {
  const desc = registry.getMessage(`bridge.openapi.v1.${name}`);
  assert.ok(desc, name);
  return desc;
};

function schemasOf(...names: string[]): { schemas: Record<string, JsonSchema>; validator: ReturnType<typeof componentValidators> } {
  const components = new SchemaComponents();
  for (const name of names) components.ref(message(name));
  return { schemas: components.schemas, validator: componentValidators(components.schemas) };
}

const { schemas, validator } = schemasOf("Scalars", "Node", "Choice", "WellKnownTypes");
const valid = (name: string, json: unknown) => {
  const validate = validator(`bridge.openapi.v1.${name}`);
  assert.ok(validate(json), `${name} ${JSON.stringify(json)}: ${JSON.stringify(validate.errors)}`);
};
const invalid = (name: string, json: unknown) => assert.equal(validator(`bridge.openapi.v1.${name}`)(json), false, `${name} ${JSON.stringify(json)} should fail`);
const propertiesOf = (name: string) => schemas[`bridge.openapi.v1.${name}`]!.properties as Record<string, JsonSchema>;

test("scalars: the JSON protobuf-es writes validates; 64-bit integers are strings, floats may be NaN/Infinity, json_name is the key", () => {
  const desc = message("Scalars");
  const json = toJson(
    desc,
    create(desc, {
      aDouble: Number.NaN,
      aFloat: Number.POSITIVE_INFINITY,
      anInt32: -5,
      anInt64: -9007199254740993n,
      aUint32: 4294967295,
      aUint64: 18446744073709551615n,
      aSint64: 7n,
      aFixed64: 1n,
      aSfixed64: -1n,
      aBool: true,
      aString: "hé",
      aBytes: new Uint8Array([0, 255, 1]),
      customName: "x",
      maybe: 0,
    } as never),
  );
  assert.equal((json as Record<string, unknown>).anInt64, "-9007199254740993");
  valid("Scalars", json);
  valid("Scalars", {});
  const properties = propertiesOf("Scalars");
  assert.ok("renamed" in properties && !("customName" in properties) && !("custom_name" in properties));
  assert.equal(properties.renamed!.description, 'Written "renamed" in JSON, not "customName".');
  assert.deepEqual(properties.anInt64, { type: "string", format: "int64", pattern: "^-?[0-9]+$" });
  assert.deepEqual(properties.aBytes, { type: "string", contentEncoding: "base64", format: "byte" });
  invalid("Scalars", { anInt64: 5 });
  invalid("Scalars", { aUint64: "-1" });
  invalid("Scalars", { anInt32: 2 ** 31 });
  invalid("Scalars", { aDouble: "1.5" });
  invalid("Scalars", { aBool: "true" });
  assert.equal(schemas["bridge.openapi.v1.Scalars"]!.description, "Every scalar, as proto3 JSON writes it.");
});

test("nested and recursive messages are $refs to one component each; maps are objects with typed keys; enums are their names", () => {
  const desc = message("Node");
  const leaf = { label: "leaf", moodList: [1, 2], longs: [1n, -2n] };
  const json = toJson(
    desc,
    create(desc, {
      label: "root",
      children: [leaf, { children: [leaf] }],
      named: { a: leaf },
      parent: { label: "up" },
      byId: { "12": "twelve", "-3": "minus three" },
      moods: { true: 1 },
    } as never),
  );
  assert.deepEqual((json as Record<string, unknown>).moods, { true: "MOOD_HAPPY" });
  valid("Node", json);
  const properties = propertiesOf("Node");
  assert.deepEqual(properties.parent, { $ref: "#/components/schemas/bridge.openapi.v1.Node" });
  assert.deepEqual(properties.children, { type: "array", items: { $ref: "#/components/schemas/bridge.openapi.v1.Node" } });
  assert.deepEqual(properties.byId, { type: "object", additionalProperties: { type: "string" }, propertyNames: { pattern: "^-?[0-9]+$" } });
  assert.deepEqual(schemas["bridge.openapi.v1.Mood"], { type: "string", enum: ["MOOD_UNSPECIFIED", "MOOD_HAPPY", "MOOD_GRUMPY"] });
  invalid("Node", { byId: { twelve: "x" } });
  invalid("Node", { moods: { yes: "MOOD_HAPPY" } });
  invalid("Node", { moodList: [1] });
  invalid("Node", { children: [{ label: 5 }] });
  invalid("Node", { parent: { parent: { longs: [3] } } });
});

test("oneof members are mutually exclusive (dependentSchemas) and say so in their descriptions", () => {
  valid("Choice", {});
  valid("Choice", { say: "hi", mood: "MOOD_GRUMPY" });
  valid("Choice", { node: { label: "n" } });
  invalid("Choice", { say: "hi", count: "2" });
  invalid("Choice", { count: "2", node: {} });
  const schema = schemas["bridge.openapi.v1.Choice"]!;
  assert.match(String(schema.description), /Oneof `action`: at most one of `say`, `count`, `node`\. What to do: exactly one, or none\./);
  const properties = propertiesOf("Choice");
  assert.equal(properties.say!.description, "Member of oneof `action`: set at most one of `say`, `count`, `node`.");
  assert.equal(properties.mood!.deprecated, true);
});

test("well-known types in their JSON forms", () => {
  const desc = message("WellKnownTypes");
  const types = createRegistry(registry);
  const json = toJson(
    desc,
    create(desc, {
      at: timestampFromDate(new Date("2024-01-02T03:04:05.678Z")),
      took: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }),
      meta: { a: 1, b: [true, null], c: { d: "e" } },
      anything: { kind: { case: "stringValue", value: "s" } },
      items: { values: [{ kind: { case: "numberValue", value: 2 } }] },
      packed: anyPack(StructSchema, create(StructSchema, {})),
      mask: { paths: ["user.display_name", "photo"] },
      nothing: {},
      big: 12n,
      small: 7,
      blob: new Uint8Array([1, 2, 3]),
      ratio: Number.NEGATIVE_INFINITY,
      nullValue: 0,
    } as never),
    { registry: types },
  ) as Record<string, unknown>;
  assert.equal(json.took, "1.500s");
  assert.equal(json.mask, "user.displayName,photo");
  valid("WellKnownTypes", json);
  const s = (name: string) => schemas[`google.protobuf.${name}`]!;
  assert.equal(s("Timestamp").format, "date-time");
  assert.equal(s("Duration").type, "string");
  assert.equal(s("FieldMask").type, "string");
  assert.deepEqual(s("Struct").additionalProperties, { $ref: "#/components/schemas/google.protobuf.Value" });
  assert.deepEqual(s("Any").required, ["@type"]);
  assert.deepEqual(s("Int64Value"), { type: "string", format: "int64", pattern: "^-?[0-9]+$" });
  assert.equal(s("NullValue").type, "null");
  invalid("WellKnownTypes", { at: "yesterday" });
  invalid("WellKnownTypes", { took: "1.5" });
  invalid("WellKnownTypes", { packed: { value: 1 } });
  invalid("WellKnownTypes", { nothing: { x: 1 } });
  invalid("WellKnownTypes", { big: 12 });
  invalid("WellKnownTypes", { meta: [1] });
});
