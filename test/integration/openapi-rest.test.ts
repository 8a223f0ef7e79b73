/**
 * Requests built from the served OpenAPI document alone (path, parameters
 * and bodies constructed from its schemas, the way a generated client
 * would) succeed through the bridge with REST on, against the grpc-js REST
 * test upstream; every answer validates against the document's response
 * schema, and the echoing methods show each parameter reached its field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { buildDescriptorSet } from "../support/schema-upstream.js";
import { startBridge } from "../support/bridge.js";
import { startRestUpstream } from "../support/rest-upstream.js";
import { componentValidators } from "../support/openapi.js";

type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: "path" | "query";
  schema: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

/** A value the schema accepts, made from the schema only (first choices, non-default enum values). */
function sample(schema: Schema, doc: Document, depth = 0): unknown {
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.slice("#/components/schemas/".length);
    if (name === "google.protobuf.Any") return undefined;
    return sample(doc.components.schemas[name]!, doc, depth + 1);
  }
  if (Array.isArray(schema.oneOf)) return sample(schema.oneOf[0] as Schema, doc, depth);
  if (Array.isArray(schema.enum)) return schema.enum.length > 1 ? schema.enum[1] : schema.enum[0];
  switch (schema.type) {
    case "string":
      if (schema.format === "int64" || schema.format === "uint64") return "42";
      if (schema.format === "byte") return "AQI=";
      if (schema.format === "date-time") return "2024-01-02T03:04:05Z";
      if (typeof schema.pattern === "string" && schema.pattern.endsWith("s$")) return "1.500s";
      return "v1";
    case "integer":
      return 7;
    case "number":
      return 1.5;
    case "boolean":
      return true;
    case "array": {
      const item = sample(schema.items as Schema, doc, depth + 1);
      return item === undefined ? [] : [item];
    }
    case "object": {
      if (depth > 3 || schema.properties === undefined) return {};
      const out: Record<string, unknown> = {};
      const excluded = new Set<string>();
      const dependent = (schema.dependentSchemas ?? {}) as Record<string, { not: { anyOf: { required: string[] }[] } }>;
      for (const [key, property] of Object.entries(schema.properties as Record<string, Schema>)) {
        if (excluded.has(key)) continue;
        const value = sample(property, doc, depth + 1);
        if (value === undefined) continue;
        out[key] = value;
        for (const other of dependent[key]?.not.anyOf ?? []) other.required.forEach((name) => excluded.add(name));
      }
      return out;
    }
    default:
      return "v1";
  }
}

/** The value at a dotted JSON path. */
const at = (value: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);

const descriptorFile = await buildDescriptorSet();
test.after(() => rmSync(dirname(descriptorFile), { recursive: true, force: true }));

test("every operation in the served document, called as the document describes it, succeeds through REST and answers what the document says", async (t) => {
  const upstream = await startRestUpstream();
  t.after(() => upstream.close());
  const bridge = await startBridge(upstream.address, {
    schema: { descriptorSets: [readFileSync(descriptorFile)] },
    rest: { enabled: true },
    openapi: { on: "data" },
    cors: false,
  } as never);
  t.after(() => bridge.close());

  const doc = (await (await fetch(`${bridge.baseUrl}/openapi.json`)).json()) as Document;
  assert.ok((await new Validator().validate(structuredClone(doc) as never)).valid);
  const compile = (schema: Schema) => {
    // Inline schemas refer to the components: validate them as a component would.
    doc.components.schemas["test.Inline"] = schema;
    const v = componentValidators(doc.components.schemas)("test.Inline");
    delete doc.components.schemas["test.Inline"];
    return v;
  };

  let called = 0;
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [verb, operation] of Object.entries(item)) {
      const sent: Record<string, unknown> = {};
      let path = template;
      const query = new URLSearchParams();
      for (const parameter of operation.parameters ?? []) {
        const value = sample(parameter.schema, doc);
        if (parameter.in === "path") {
          path = path.replace(`{${parameter.name}}`, encodeURIComponent(String(value)));
        } else {
          for (const v of Array.isArray(value) ? value : [value]) query.append(parameter.name, String(v));
          sent[parameter.name] = value;
        }
      }
      const init: RequestInit = { method: verb.toUpperCase(), headers: {} };
      const content = operation.requestBody?.content;
      let jsonBody: unknown;
      if (content?.["application/json"] !== undefined) {
        jsonBody = sample(content["application/json"].schema, doc);
        init.body = JSON.stringify(jsonBody);
        (init.headers as Record<string, string>)["content-type"] = "application/json";
      } else if (content?.["*/*"] !== undefined) {
        init.body = "raw bytes";
        (init.headers as Record<string, string>)["content-type"] = "text/plain";
      }
      const url = `${bridge.baseUrl}${path}${query.size > 0 ? `?${query}` : ""}`;
      const response = await fetch(url, init);
      const type = response.headers.get("content-type") ?? "";
      const text = await response.text();
      const expected = operation.operationId === "Library_Fail" ? "default" : "200";
      assert.equal(response.status === 200 ? "200" : "default", expected, `${operation.operationId} ${init.method} ${url}: ${response.status} ${text}`);
      const declared = operation.responses[expected]!.content!;
      if (declared["*/*"] !== undefined) {
        assert.ok(text.length > 0, operation.operationId);
      } else if (declared["application/x-ndjson"] !== undefined) {
        assert.match(type, /^application\/x-ndjson/);
        const line = compile(declared["application/x-ndjson"].schema);
        const lines = text.trimEnd().split("\n");
        // count and failCode were 7: seven messages, then the error line.
        assert.equal(lines.length, 8, text);
        for (const l of lines) assert.ok(line(JSON.parse(l)), `${operation.operationId} line ${l}: ${JSON.stringify(line.errors)}`);
      } else {
        const validate = compile(declared["application/json"]!.schema);
        const json = JSON.parse(text) as unknown;
        assert.ok(validate(json), `${operation.operationId} answered ${text}: ${JSON.stringify(validate.errors)}`);
        // The echoing methods answer with the request message: each query parameter reached its field.
        const echoes = ["Messaging_GetMessage", "Messaging_GetMessage_1", "Library_QueryBooks", "Library_CreateBook"];
        if (echoes.includes(operation.operationId)) {
          for (const [name, value] of Object.entries(sent)) assert.deepEqual(at(json, name), value, `${operation.operationId} ${name}`);
          if (operation.operationId === "Library_CreateBook") assert.deepEqual(at(json, "book"), jsonBody);
        }
      }
      called++;
    }
  }
  // Every binding but SearchBooks (SEARCH: no OpenAPI 3.1 operation).
  assert.equal(called, 16);
});
