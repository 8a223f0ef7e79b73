/**
 * A REST request as the binary request message of its RPC, by
 * google/api/http.proto's rules: path variables, then the body (`*`, one
 * field, or none), then query parameters for the remaining fields (only
 * when the body is not `*`). Everything is gathered into the message's
 * proto3 JSON form and read with @bufbuild/protobuf's `fromJson` and the
 * schema's registry, the same mapping the Connect JSON transcoder uses, so
 * well-known types, enums by name, 64-bit integers as strings and `Any`
 * mean the same in REST as in Connect JSON.
 */
import { fromJson, toBinary, type DescField, type DescMessage, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { Code, ConnectError } from "../protocol/status.js";
import type { HttpBinding } from "./bindings.js";
import { resolveFieldPath } from "./bindings.js";
import type { PathBinding } from "./path-template.js";

/** `google.api.HttpBody`: raw bytes with a content type, never JSON. */
export const httpBodyTypeName = "google.api.HttpBody";

/** The request's parts the message is built from. */
export interface RestRequestParts {
  readonly bindings: readonly PathBinding[];
  /** The query string without "?", still encoded. */
  readonly rawQuery: string;
  /** The body bytes, or undefined when the binding takes no body. */
  readonly body: Buffer | undefined;
  readonly contentType: string | undefined;
}

/**
 * The binary request message, or a ConnectError (`invalid_argument`)
 * saying which parameter or body part is wrong.
 */
export function restRequestMessage(binding: HttpBinding, parts: RestRequestParts, types: Registry): Uint8Array {
  const input = binding.method.input;
  const json = bodyJson(binding, input, parts);
  const taken = new Set<string>();
  for (const { fieldPath, value } of parts.bindings) {
    const field = resolveFieldPath(input, fieldPath) as DescField; // checked when the bindings were listed
    setAt(json, input, fieldPath.split("."), pathValue(field, value, fieldPath));
    taken.add(fieldPath.split(".")[0]);
  }
  if (binding.body !== "*" && parts.rawQuery !== "") {
    if (binding.body !== undefined) taken.add(binding.body);
    addQuery(json, input, parts.rawQuery, taken);
  }
  try {
    return toBinary(input, fromJson(input, json, { registry: types, ignoreUnknownFields: false }));
  } catch (error) {
    throw new ConnectError(`request does not make a valid ${input.typeName}: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

function bodyJson(binding: HttpBinding, input: DescMessage, parts: RestRequestParts): JsonObject {
  const { body } = binding;
  if (body === undefined) return {};
  if (body === "*") {
    if (input.typeName === httpBodyTypeName) return httpBodyJson(parts);
    const value = parseBody(parts.body, input.typeName);
    if (value === undefined) return {};
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ConnectError(`request body must be a JSON object (${input.typeName})`, Code.InvalidArgument);
    }
    return value;
  }
  const field = input.fields.find((f) => f.name === body)!;
  if (field.fieldKind === "message" && field.message.typeName === httpBodyTypeName) return { [field.jsonName]: httpBodyJson(parts) };
  const value = parseBody(parts.body, `field "${body}" of ${input.typeName}`);
  return value === undefined ? {} : { [field.jsonName]: value };
}

function httpBodyJson(parts: RestRequestParts): JsonObject {
  const json: JsonObject = { data: (parts.body ?? Buffer.alloc(0)).toString("base64") };
  if (parts.contentType !== undefined) json.contentType = parts.contentType;
  return json;
}

/** The body as JSON; undefined for an empty body (nothing set). */
function parseBody(body: Buffer | undefined, what: string): JsonValue | undefined {
  if (body === undefined || body.byteLength === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8")) as JsonValue;
  } catch (error) {
    throw new ConnectError(`request body is not valid JSON for ${what}: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

/** Puts `value` at a field path, creating the messages on the way; replaces what the body set there. */
function setAt(json: JsonObject, message: DescMessage, path: readonly string[], value: JsonValue, append = false): void {
  let target = json;
  let current = message;
  for (let i = 0; i < path.length; i++) {
    const field = current.fields.find((f) => f.name === path[i]) ?? current.fields.find((f) => f.jsonName === path[i])!;
    // A body may have used either name: keep one key per field.
    if (field.name !== field.jsonName && field.name in target) {
      if (!(field.jsonName in target)) target[field.jsonName] = target[field.name];
      delete target[field.name];
    }
    if (i === path.length - 1) {
      if (append) {
        const list = target[field.jsonName];
        if (Array.isArray(list)) list.push(value);
        else target[field.jsonName] = [value];
      } else {
        target[field.jsonName] = value;
      }
      return;
    }
    let next = target[field.jsonName];
    if (typeof next !== "object" || next === null || Array.isArray(next)) {
      next = {};
      target[field.jsonName] = next;
    }
    target = next;
    current = (field as DescField & { fieldKind: "message" }).message;
  }
}

function pathValue(field: DescField, value: string, name: string): JsonValue {
  return textToJson(field, value, `path variable {${name}}`);
}

/**
 * Query parameters, each naming a field by its path (proto or JSON names,
 * dots into nested messages); a repeated field may be given several times.
 */
function addQuery(json: JsonObject, input: DescMessage, rawQuery: string, taken: ReadonlySet<string>): void {
  for (const [name, value] of new URLSearchParams(rawQuery)) {
    const field = resolveFieldPath(input, name);
    if (typeof field === "string") throw new ConnectError(`query parameter "${name}": ${field}`, Code.InvalidArgument);
    const path = name.split(".");
    const top = input.fields.find((f) => f.name === path[0] || f.jsonName === path[0])!;
    if (taken.has(top.name)) {
      throw new ConnectError(`query parameter "${name}": field "${top.name}" is bound by the path or the body`, Code.InvalidArgument);
    }
    const what = `query parameter "${name}"`;
    if (field.fieldKind === "map") throw new ConnectError(`${what}: map fields cannot be query parameters`, Code.InvalidArgument);
    if (field.fieldKind === "list") {
      if (field.listKind === "message") throw new ConnectError(`${what}: repeated message fields cannot be query parameters`, Code.InvalidArgument);
      setAt(json, input, path, textToJson(field, value, what), true);
      continue;
    }
    setAt(json, input, path, textToJson(field, value, what));
  }
}

/** Well-known types whose JSON form is a string or a scalar, so one text value can carry them. */
const scalarLikeMessages = new Map<string, ScalarType | "string">([
  ["google.protobuf.Timestamp", "string"],
  ["google.protobuf.Duration", "string"],
  ["google.protobuf.FieldMask", "string"],
  ["google.protobuf.DoubleValue", ScalarType.DOUBLE],
  ["google.protobuf.FloatValue", ScalarType.FLOAT],
  ["google.protobuf.Int64Value", ScalarType.INT64],
  ["google.protobuf.UInt64Value", ScalarType.UINT64],
  ["google.protobuf.Int32Value", ScalarType.INT32],
  ["google.protobuf.UInt32Value", ScalarType.UINT32],
  ["google.protobuf.BoolValue", ScalarType.BOOL],
  ["google.protobuf.StringValue", ScalarType.STRING],
  ["google.protobuf.BytesValue", ScalarType.BYTES],
]);

/**
 * One text value (a path segment, a query value) as the JSON the field
 * takes: booleans as true/false, enums by name or number, numbers and
 * everything else as the string proto3 JSON accepts for them.
 */
function textToJson(field: DescField, text: string, what: string): JsonValue {
  let scalar: ScalarType | "string" | undefined;
  let isEnum = false;
  if (field.fieldKind === "scalar") scalar = field.scalar;
  else if (field.fieldKind === "enum") isEnum = true;
  else if (field.fieldKind === "list") {
    if (field.listKind === "scalar") scalar = field.scalar;
    else if (field.listKind === "enum") isEnum = true;
  } else if (field.fieldKind === "message") {
    scalar = scalarLikeMessages.get(field.message.typeName);
    if (scalar === undefined) {
      throw new ConnectError(`${what}: ${field.message.typeName} is a message: name one of its fields (${field.name}.<field>)`, Code.InvalidArgument);
    }
  }
  if (isEnum) return /^-?\d+$/.test(text) ? Number(text) : text;
  if (scalar === ScalarType.BOOL) {
    if (text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
    throw new ConnectError(`${what}: "${text}" is not a boolean (true or false)`, Code.InvalidArgument);
  }
  return text;
}
