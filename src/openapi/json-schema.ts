/**
 * JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) for protobuf
 * messages in their canonical proto3 JSON form, from protobuf-es
 * descriptors. Every message and enum becomes one named schema under
 * `#/components/schemas/<full.name>`, referenced with `$ref`, so nested and
 * recursive messages need nothing special.
 */
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { descriptionOf } from "./comments.js";

/** A JSON Schema object as OpenAPI 3.1 embeds it. */
export type JsonSchema = { [keyword: string]: unknown };

/** Where the named schemas live in an OpenAPI document. */
export const componentsPrefix = "#/components/schemas/";

/** `{ $ref }` to a named schema. */
export function refTo(name: string): JsonSchema {
  return { $ref: componentsPrefix + name };
}

/** The value of every float/double field proto3 JSON writes as a string. */
const nonFinite = ["NaN", "Infinity", "-Infinity"];

/**
 * Schemas of scalar values in proto3 JSON. 64-bit integers are strings (a
 * JSON number loses precision past 2^53); parsers also take numbers, but
 * the schema describes what the bridge writes.
 */
export function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const format = scalar === ScalarType.DOUBLE ? "double" : "float";
      return { oneOf: [{ type: "number", format }, { type: "string", enum: nonFinite }] };
    }
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32", minimum: -2147483648, maximum: 2147483647 };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      // Standard base64 with padding on output; parsers accept URL-safe too.
      return { type: "string", contentEncoding: "base64", format: "byte" };
  }
}

/** Map keys are JSON object keys: always strings, holding the key type's text. */
function mapKeySchema(scalar: ScalarType): JsonSchema | undefined {
  switch (scalar) {
    case ScalarType.STRING:
      return undefined;
    case ScalarType.BOOL:
      return { enum: ["true", "false"] };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { pattern: "^[0-9]+$" };
    default:
      return { pattern: "^-?[0-9]+$" };
  }
}

/**
 * Well-known types whose JSON form is not an object of their fields
 * (https://protobuf.dev/programming-guides/json/).
 */
const wellKnown: Record<string, () => JsonSchema> = {
  "google.protobuf.Timestamp": () => ({
    type: "string",
    format: "date-time",
    description: 'RFC 3339 in UTC ("Z"), 0, 3, 6 or 9 fractional digits, e.g. "2024-01-02T03:04:05.678Z".',
  }),
  "google.protobuf.Duration": () => ({
    type: "string",
    pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$",
    description: 'Seconds with up to 9 fractional digits and the suffix "s", e.g. "1.5s".',
  }),
  "google.protobuf.FieldMask": () => ({
    type: "string",
    description: 'Field paths in lowerCamelCase JSON names, comma-separated, e.g. "user.displayName,photo".',
  }),
  "google.protobuf.Struct": () => ({
    type: "object",
    additionalProperties: refTo("google.protobuf.Value"),
    description: "Any JSON object.",
  }),
  "google.protobuf.Value": () => ({ description: "Any JSON value." }),
  "google.protobuf.ListValue": () => ({ type: "array", items: refTo("google.protobuf.Value"), description: "Any JSON array." }),
  "google.protobuf.Empty": () => ({ type: "object", properties: {}, additionalProperties: false }),
  "google.protobuf.Any": () => ({
    type: "object",
    properties: {
      "@type": { type: "string", description: 'The packed message\'s type URL, e.g. "type.googleapis.com/google.rpc.ErrorInfo".' },
    },
    required: ["@type"],
    additionalProperties: true,
    description:
      'A message of any type the schema knows: "@type" and the message\'s own JSON fields, or "@type" and "value" for a well-known type with a special JSON form (e.g. a Timestamp).',
  }),
  "google.protobuf.DoubleValue": () => scalarSchema(ScalarType.DOUBLE),
  "google.protobuf.FloatValue": () => scalarSchema(ScalarType.FLOAT),
  "google.protobuf.Int64Value": () => scalarSchema(ScalarType.INT64),
  "google.protobuf.UInt64Value": () => scalarSchema(ScalarType.UINT64),
  "google.protobuf.Int32Value": () => scalarSchema(ScalarType.INT32),
  "google.protobuf.UInt32Value": () => scalarSchema(ScalarType.UINT32),
  "google.protobuf.BoolValue": () => scalarSchema(ScalarType.BOOL),
  "google.protobuf.StringValue": () => scalarSchema(ScalarType.STRING),
  "google.protobuf.BytesValue": () => scalarSchema(ScalarType.BYTES),
};

/** Whether proto3 JSON writes `message` as something other than an object of its fields. */
export function hasSpecialJson(message: DescMessage): boolean {
  return message.typeName in wellKnown && message.typeName !== "google.protobuf.Any" && message.typeName !== "google.protobuf.Empty";
}

/**
 * The named schemas of one document, filled in as messages are referenced:
 * `ref(message)` returns a `$ref` and adds the message (and everything it
 * reaches) under `schemas`.
 */
export class SchemaComponents {
  /** Keyed by full protobuf name; insertion order is the order of first use. */
  readonly schemas: Record<string, JsonSchema> = {};

  /** `$ref` to the message's schema, which is added (with what it reaches) if new. */
  ref(message: DescMessage): JsonSchema {
    this.add(message);
    return refTo(message.typeName);
  }

  /** Schema of one field's value in proto3 JSON (repeated and map included). */
  field(field: DescField): JsonSchema {
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar);
      case "enum":
        return this.enumRef(field.enum);
      case "message":
        return this.ref(field.message);
      case "list":
        return { type: "array", items: this.element(field.listKind, field.scalar, field.enum, field.message) };
      case "map": {
        const schema: JsonSchema = { type: "object", additionalProperties: this.element(field.mapKind, field.scalar, field.enum, field.message) };
        const keys = mapKeySchema(field.mapKey);
        if (keys !== undefined) schema.propertyNames = keys;
        return schema;
      }
    }
  }

  /** Schema of one element of a repeated field or map value. */
  private element(kind: "scalar" | "enum" | "message", scalar: ScalarType | undefined, enumType: DescEnum | undefined, message: DescMessage | undefined): JsonSchema {
    if (kind === "scalar") return scalarSchema(scalar!);
    if (kind === "enum") return this.enumRef(enumType!);
    return this.ref(message!);
  }

  private enumRef(enumType: DescEnum): JsonSchema {
    if (!(enumType.typeName in this.schemas)) {
      if (enumType.typeName === "google.protobuf.NullValue") {
        this.schemas[enumType.typeName] = { type: "null", description: "JSON null." };
      } else {
        const schema: JsonSchema = { type: "string", enum: enumType.values.map((value) => value.name) };
        const description = descriptionOf(enumType);
        if (description !== undefined) schema.description = description;
        this.schemas[enumType.typeName] = schema;
      }
    }
    return refTo(enumType.typeName);
  }

  private add(message: DescMessage): void {
    const name = message.typeName;
    if (name in this.schemas) return;
    const special = wellKnown[name];
    if (special !== undefined) {
      this.schemas[name] = special();
      if (name === "google.protobuf.Struct" || name === "google.protobuf.ListValue") this.schemas["google.protobuf.Value"] ??= wellKnown["google.protobuf.Value"]!();
      return;
    }
    // Placed before the fields are walked, so a recursive reference finds it.
    const schema: JsonSchema = { type: "object" };
    this.schemas[name] = schema;
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of message.fields) {
      const property = this.field(field);
      const notes: string[] = [];
      const comment = descriptionOf(field);
      if (comment !== undefined) notes.push(comment);
      if (field.oneof !== undefined) {
        const others = field.oneof.fields.filter((f) => f !== field).map((f) => f.jsonName);
        notes.push(`Member of oneof \`${field.oneof.name}\`: set at most one of ${[field.jsonName, ...others].map((n) => `\`${n}\``).join(", ")}.`);
      }
      properties[field.jsonName] = withNotes(property, notes, field.deprecated);
      // proto2 `required` and editions' LEGACY_REQUIRED: a parser rejects the message without them.
      if (field.presence === 3) required.push(field.jsonName);
    }
    schema.properties = properties;
    if (required.length > 0) schema.required = required;
    const oneofs = message.oneofs.filter((oneof) => oneof.fields.length > 1);
    if (oneofs.length > 0) {
      // "At most one member of each oneof": if one is present, none of the others.
      const dependent: Record<string, JsonSchema> = {};
      for (const oneof of oneofs) {
        for (const field of oneof.fields) {
          const others = oneof.fields.filter((f) => f !== field).map((f) => ({ required: [f.jsonName] }));
          dependent[field.jsonName] = { not: { anyOf: others } };
        }
      }
      schema.dependentSchemas = dependent;
    }
    const notes: string[] = [];
    const comment = descriptionOf(message);
    if (comment !== undefined) notes.push(comment);
    for (const oneof of oneofs) {
      const about = descriptionOf(oneof);
      notes.push(`Oneof \`${oneof.name}\`: at most one of ${oneof.fields.map((f) => `\`${f.jsonName}\``).join(", ")}.${about === undefined ? "" : ` ${about}`}`);
    }
    if (notes.length > 0) schema.description = notes.join("\n\n");
    if (message.deprecated) schema.deprecated = true;
  }
}

/**
 * Adds a description (and `deprecated`) to a field's schema. A `$ref` may
 * have siblings in 2020-12, so a referenced type keeps its own description
 * and the field adds its own beside it.
 */
function withNotes(schema: JsonSchema, notes: string[], deprecated: boolean): JsonSchema {
  if (notes.length === 0 && !deprecated) return schema;
  const out: JsonSchema = { ...schema };
  if (notes.length > 0) out.description = notes.join("\n\n");
  if (deprecated) out.deprecated = true;
  return out;
}
