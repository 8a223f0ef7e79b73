/**
 * What a REST client gets back: the response message as canonical proto3
 * JSON (or the `response_body` field of it, or the raw bytes of a
 * `google.api.HttpBody`), and errors as `google.rpc.Status` JSON with the
 * error details resolved through the schema.
 */
import { create, fromBinary, toJson, toJsonString, type DescMessage, type JsonObject, type JsonValue, type Registry } from "@bufbuild/protobuf";
import { anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import { toJson as anyToJson } from "@bufbuild/protobuf";
import type { ConnectError } from "../protocol/status.js";
import { HttpBodySchema } from "../../gen/google/api/httpbody_pb.js";
import type { HttpBinding } from "./bindings.js";
import { httpBodyTypeName } from "./request-message.js";

/** A response body and its content type. */
export interface RestBody {
  readonly body: Buffer;
  readonly contentType: string;
  /** An HttpBody's bytes (whatever their content type), not a JSON rendering of a message. */
  readonly raw: boolean;
}

export const jsonContentType = "application/json";

/**
 * The HTTP body for one binary response message. Throws (a plain Error)
 * when the message does not decode as the method's output type.
 */
export function responseBody(binding: HttpBinding, payload: Uint8Array, types: Registry): RestBody {
  const output = binding.method.output;
  if (binding.responseBody === undefined) {
    if (output.typeName === httpBodyTypeName) return rawBody(fromBinary(HttpBodySchema, payload));
    return { body: Buffer.from(toJsonString(output, fromBinary(output, payload), { registry: types })), contentType: jsonContentType, raw: false };
  }
  const field = output.fields.find((f) => f.name === binding.responseBody)!;
  const message = fromBinary(output, payload);
  if (field.fieldKind === "message" && field.message.typeName === httpBodyTypeName) {
    // Decoded with the output's own descriptor: an HttpBody-shaped message (or unset).
    const value = (message as unknown as Record<string, { contentType: string; data: Uint8Array } | undefined>)[field.localName];
    return rawBody(value ?? { contentType: "", data: new Uint8Array(0) });
  }
  let value = (toJson(output, message, { registry: types }) as JsonObject)[field.jsonName];
  // An unset field still has a JSON form: [] for a list, {} for a map, the zero value of a scalar (null for a message).
  value ??= (toJson(output, message, { registry: types, alwaysEmitImplicit: true }) as JsonObject)[field.jsonName] ?? null;
  return { body: Buffer.from(JSON.stringify(value)), contentType: jsonContentType, raw: false };
}

function rawBody(body: { contentType: string; data: Uint8Array }): RestBody {
  return {
    body: Buffer.from(body.data.buffer, body.data.byteOffset, body.data.byteLength),
    contentType: body.contentType === "" ? "application/octet-stream" : body.contentType,
    raw: true,
  };
}

/**
 * `google.rpc.Status` in its JSON form: `{"code": 5, "message": "...",
 * "details": [{"@type": "type.googleapis.com/...", ...}]}`. Details the
 * schema describes are written as JSON `Any`; others keep their bytes
 * (`{"@type": ..., "value": "<base64>"}`), since without a descriptor no
 * JSON form exists.
 */
export function statusJson(error: ConnectError, types: Registry | undefined): JsonObject {
  const status: JsonObject = { code: error.code, message: error.rawMessage };
  const details: JsonValue[] = [];
  for (const detail of error.details) {
    if ("desc" in detail) {
      details.push(anyJson(detail.desc, create(detail.desc, detail.value) as never, types) ?? { "@type": `type.googleapis.com/${detail.desc.typeName}` });
      continue;
    }
    const desc = types?.getMessage(detail.type);
    let json: JsonValue | undefined;
    if (desc !== undefined) {
      try {
        json = anyJson(desc, fromBinary(desc, detail.value) as never, types);
      } catch {
        json = undefined;
      }
    }
    details.push(json ?? { "@type": `type.googleapis.com/${detail.type}`, value: Buffer.from(detail.value).toString("base64") });
  }
  if (details.length > 0) status.details = details;
  return status;
}

function anyJson(desc: DescMessage, value: never, types: Registry | undefined): JsonValue | undefined {
  if (types === undefined) return undefined;
  try {
    return anyToJson(AnySchema, anyPack(desc, value), { registry: types });
  } catch {
    return undefined;
  }
}
