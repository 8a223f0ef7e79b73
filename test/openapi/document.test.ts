/**
 * The OpenAPI document of the REST test proto (google/api/http.proto's own
 * examples and every binding shape) and of the project's whole proto tree
 * plus the bundled well-known types: valid OpenAPI 3.1 for a maintained
 * validator, every component schema compiles under draft 2020-12, and the
 * paths, parameters and bodies say what the annotations mean.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRegistry, type DescMessage } from "@bufbuild/protobuf";
import { file_google_protobuf_api, file_google_protobuf_descriptor, file_google_protobuf_type } from "@bufbuild/protobuf/wkt";
import { Validator } from "@seriousme/openapi-schema-validator";
import { openApiDocument, documentOf } from "../../src/openapi/document.js";
import { listHttpBindings } from "../../src/rest/bindings.js";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { SchemaComponents } from "../../src/openapi/json-schema.js";
import { buildRegistry, componentValidators } from "../support/openapi.js";

const protos = await buildRegistry("proto");
const doc = openApiDocument(createRegistry(protos), { title: "REST test", version: "1.2.3" });
const paths = doc.paths as Record<string, Record<string, Operation>>;
const schemas = (doc.components as { schemas: Record<string, Record<string, unknown>> }).schemas;

interface Parameter {
  name: string;
  in: "path" | "query";
  required?: boolean;
  schema: Record<string, unknown>;
  description?: string;
  style?: string;
  explode?: boolean;
}
interface Operation {
  operationId: string;
  tags: string[];
  summary?: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
}

function op(path: string, verb: string): Operation {
  const found = paths[path]?.[verb];
  assert.ok(found, `${verb} ${path} in ${Object.keys(paths).join(", ")}`);
  return found;
}
const param = (o: Operation, name: string, where: "path" | "query") => o.parameters?.find((p) => p.name === name && p.in === where);
const names = (o: Operation, where: "path" | "query") => (o.parameters ?? []).filter((p) => p.in === where).map((p) => p.name);
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const rest = "bridge.test.rest.v1";

async function assertValidOpenApi(document: unknown): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(document) as never);
  assert.equal(validator.version, "3.1");
  assert.ok(result.valid, JSON.stringify(result.errors, null, 1)?.slice(0, 2000));
}

test("the REST test proto's document is valid OpenAPI 3.1, and each component schema compiles under 2020-12 (strict)", async () => {
  assert.equal(doc.openapi, "3.1.0");
  assert.deepEqual(doc.info, { title: "REST test", version: "1.2.3" });
  await assertValidOpenApi(doc);
  const validator = componentValidators(schemas);
  for (const name of Object.keys(schemas)) validator(name);
  // Not a vacuous pass: the validator refuses a document with a broken operation.
  const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, { responses?: unknown }>> };
  broken.paths["/v1/fail"]!.post!.responses = "none";
  assert.equal((await new Validator().validate(broken as never)).valid, false);
});

test("http.proto's examples: path variables, query parameters for the other fields (nested with dots), additional_bindings", () => {
  // get: "/v1/{name=messages/*}": the literal stays in the path, the wildcard is the parameter.
  const byName = op("/v1/messages/{name}", "get");
  assert.equal(byName.operationId, "Messaging_GetMessageByName");
  assert.deepEqual(byName.tags, [`${rest}.Messaging`]);
  assert.match(String(param(byName, "name", "path")?.description), /Part of field `name`, whose value is `messages\/\{name\}`/);
  assert.deepEqual(names(byName, "query"), []);

  const get = op("/v2/messages/{message_id}", "get");
  assert.equal(get.operationId, "Messaging_GetMessage");
  assert.deepEqual(param(get, "message_id", "path")?.schema, { type: "string" });
  assert.deepEqual(names(get, "query"), ["revision", "sub.subfield", "userId"]);
  assert.deepEqual(param(get, "revision", "query")?.schema, { type: "string", format: "int64", pattern: "^-?[0-9]+$" });
  const extra = op("/v2/users/{user_id}/messages/{message_id}", "get");
  assert.equal(extra.operationId, "Messaging_GetMessage_1");
  assert.deepEqual(names(extra, "path"), ["user_id", "message_id"]);
  assert.deepEqual(names(extra, "query"), ["revision", "sub.subfield"]);
  assert.deepEqual(get.responses["200"]!.content!["application/json"]!.schema, ref(`${rest}.GetMessageRequest`));
  assert.deepEqual(get.responses.default!.content!["application/json"]!.schema, ref("google.rpc.Status"));
});

test("bodies: a field, or * without the fields the path sets; no query parameters then", () => {
  const patchField = op("/v3/messages/{message_id}", "patch");
  assert.deepEqual(patchField.requestBody!.content["application/json"]!.schema, ref(`${rest}.Message`));
  assert.deepEqual(names(patchField, "query"), []);
  const patchAll = op("/v4/messages/{message_id}", "patch");
  const body = patchAll.requestBody!.content["application/json"]!.schema as { properties: Record<string, unknown> };
  assert.deepEqual(Object.keys(body.properties), ["text"]);
  assert.deepEqual(names(patchAll, "query"), []);

  const create = op("/v1/shelves/{shelf}/books", "post");
  assert.equal(create.operationId, "Library_CreateBook");
  // Same OpenAPI path as QueryBooks, whose parameter name it shares; it fills `parent`.
  assert.match(String(param(create, "shelf", "path")?.description), /Part of field `parent`, whose value is `shelves\/\{shelf\}`/);
  assert.deepEqual(create.requestBody!.content["application/json"]!.schema, ref(`${rest}.Book`));
  assert.deepEqual(names(create, "query"), ["requestId"]);

  // put: "/v1/{book.name=shelves/*/books/*}" body: "book"
  const replace = op("/v1/shelves/{shelves}/books/{book.name}", "put");
  assert.deepEqual(names(replace, "path"), ["shelves", "book.name"]);
  assert.match(String(param(replace, "book.name", "path")?.description), /`shelves\/\{shelves\}\/books\/\{book\.name\}`/);
  const remove = op("/v1/shelves/{shelves}/books/{book.name}", "delete");
  assert.match(String(param(remove, "book.name", "path")?.description), /Part of field `name`/);
});

test("query parameters of every kind: nested, repeated (form, exploded), enums by name, well-known types as their JSON strings", () => {
  const query = op("/v1/shelves/{shelf}/books", "get");
  assert.deepEqual(names(query, "query"), [
    "filter.author",
    "filter.year",
    "filter.pages.min",
    "filter.pages.max",
    "tags",
    "ids",
    "updatedAfter",
    "timeout",
    "readMask",
    "limit",
    "flag",
    "view",
    "withStats",
    "score",
    "token",
    "big",
    "views",
  ]);
  assert.deepEqual(param(query, "tags", "query"), { name: "tags", in: "query", schema: { type: "array", items: { type: "string" } }, style: "form", explode: true });
  assert.deepEqual(param(query, "view", "query")?.schema, ref(`${rest}.View`));
  assert.deepEqual(param(query, "updatedAfter", "query")?.schema, ref("google.protobuf.Timestamp"));
  assert.equal(schemas["google.protobuf.Timestamp"]!.format, "date-time");
  assert.deepEqual(schemas[`${rest}.View`], { type: "string", enum: ["VIEW_UNSPECIFIED", "VIEW_BASIC", "VIEW_FULL"] });
});

test("custom verbs, multi-segment variables, response_body, HttpBody, server streaming, and what OpenAPI cannot list", () => {
  const publish = op("/v1/shelves/{shelves}/books/{name}:publish", "post");
  assert.equal(publish.operationId, "Library_PublishBook");
  const file = op("/v1/files/{path}", "get");
  assert.match(String(param(file, "path", "path")?.description), /send its `\/` characters as they are/);
  const list = op("/v1/shelves/{parent}/books:list", "get");
  assert.deepEqual(list.responses["200"]!.content!["application/json"]!.schema, { type: "array", items: ref(`${rest}.Book`) });
  const cover = op("/v1/shelves/{shelves}/books/{name}/cover", "put");
  assert.deepEqual(Object.keys(cover.requestBody!.content), ["*/*"]);
  assert.deepEqual(Object.keys(cover.responses["200"]!.content!), ["*/*"]);
  const raw = op("/v1/raw:echo", "post");
  assert.deepEqual(raw.requestBody!.content["*/*"]!.schema, { type: "string", format: "binary" });
  const watch = op("/v1/shelves/{shelf}:watch", "get");
  assert.deepEqual(watch.responses["200"]!.content!["application/x-ndjson"]!.schema, {
    oneOf: [
      { type: "object", properties: { result: ref(`${rest}.Book`) }, required: ["result"], additionalProperties: false },
      { type: "object", properties: { error: ref("google.rpc.Status") }, required: ["error"], additionalProperties: false },
    ],
  });
  assert.deepEqual(names(watch, "query"), ["count", "failCode"]);
  // SEARCH is no OpenAPI 3.1 operation: listed, not dropped silently.
  assert.deepEqual(doc["x-unlisted-bindings"], [`${rest}.Library.SearchBooks: SEARCH /v1/books (OpenAPI has no operation for this verb)`]);
  const status = schemas["google.rpc.Status"] as { properties: Record<string, unknown> };
  assert.deepEqual(Object.keys(status.properties), ["code", "message", "details"]);
  assert.ok(schemas["google.protobuf.Any"]);
});

test("client and bidi streaming methods are listed as not served (REST serves unary and server streaming only)", () => {
  const binding = listHttpBindings(createRegistry(protos)).find((b) => b.name === `${rest}.Library.CreateBook`)!;
  const clientStream = TestService.method.clientStream;
  const bidi = TestService.method.bidiStream;
  const document = documentOf(
    [
      { ...binding, method: clientStream, name: "bridge.test.v1.TestService.ClientStream" },
      { ...binding, method: bidi, name: "bridge.test.v1.TestService.BidiStream" },
    ],
    { title: "t", version: "1" },
  );
  assert.deepEqual(document.paths, {});
  assert.deepEqual(document["x-unlisted-bindings"], [
    "bridge.test.v1.TestService.ClientStream: POST /v1/{parent=shelves/*}/books (a client-streaming method: REST serves unary and server-streaming methods only)",
    "bridge.test.v1.TestService.BidiStream: POST /v1/{parent=shelves/*}/books (a bidi-streaming method: REST serves unary and server-streaming methods only)",
  ]);
});

test("summaries come from leading comments; tags are the services", () => {
  const fail = op("/v1/fail", "post");
  assert.equal(fail.summary, "Fails with the code, message and (optionally) a FailureDetail asked for.");
  const tags = (doc.tags as { name: string }[]).map((t) => t.name);
  assert.deepEqual(tags, [`${rest}.Messaging`, `${rest}.Library`]);
});

test("a large real descriptor set: every message of the project's protos and the well-known types (descriptor.proto included) in one valid document", async () => {
  const components = new SchemaComponents();
  const all = createRegistry(protos, file_google_protobuf_descriptor, file_google_protobuf_api, file_google_protobuf_type);
  let count = 0;
  for (const type of all) {
    if (type.kind === "message") {
      components.ref(type as DescMessage);
      count++;
    }
  }
  assert.ok(count > 80, `${count} messages`);
  const big = documentOf([], { title: "all", version: "1" });
  (big.components as { schemas: Record<string, unknown> }).schemas = { ...components.schemas, ...(big.components as { schemas: object }).schemas };
  await assertValidOpenApi(big);
  const validator = componentValidators(components.schemas);
  for (const name of Object.keys(components.schemas)) validator(name);
  // descriptor.proto is proto2: its `required` fields are required in JSON too (UninterpretedOption.NamePart).
  assert.deepEqual(components.schemas["google.protobuf.UninterpretedOption.NamePart"]!.required, ["namePart", "isExtension"]);
});
