/**
 * The request message a REST request becomes (path variables, body, query),
 * decoded and compared with what google/api/http.proto says it means; and
 * the response body and google.rpc.Status forms.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, createRegistry, equals, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CreateBookRequestSchema,
  file_bridge_test_rest_v1_rest,
  FailureDetailSchema,
  ListBooksResponseSchema,
  MessageSchema,
  UpdateMessageRequestSchema,
} from "../../gen/bridge/test/rest/v1/rest_pb.js";
import { HttpBodySchema } from "../../gen/google/api/httpbody_pb.js";
import { listHttpBindings } from "../../src/rest/bindings.js";
import { matchTemplate } from "../../src/rest/path-template.js";
import { restRequestMessage } from "../../src/rest/request-message.js";
import { responseBody, statusJson } from "../../src/rest/response.js";

const types = createRegistry(file_bridge_test_rest_v1_rest);
const bindings = listHttpBindings(types);
const binding = (name: string) => bindings.find((b) => b.name === name)!;

function build<Desc extends DescMessage>(name: string, path: string, schema: Desc, parts: { query?: string; body?: string }): MessageInitShape<Desc> & object {
  const b = binding(name);
  const variables = matchTemplate(b.template, path)!;
  assert.ok(variables, `${path} matches ${b.template.source}`);
  const bytes = restRequestMessage(b, { bindings: variables, rawQuery: parts.query ?? "", body: parts.body === undefined ? undefined : Buffer.from(parts.body), contentType: "application/json" }, types);
  return fromBinary(schema, bytes) as never;
}

describe("REST request messages", () => {
  it("body \"*\": the body's keys may use proto or JSON names; the path variable wins over the body", () => {
    const got = build("bridge.test.rest.v1.Messaging.UpdateMessageAll", "/v4/messages/m1", MessageSchema, { body: '{"message_id":"from-body","text":"t"}' });
    assert.ok(equals(MessageSchema, got as never, create(MessageSchema, { messageId: "m1", text: "t" })));
  });

  it("body \"*\" takes no query parameters: the query is ignored", () => {
    const got = build("bridge.test.rest.v1.Messaging.UpdateMessageAll", "/v4/messages/m1", MessageSchema, { body: "{}", query: "text=q" });
    assert.ok(equals(MessageSchema, got as never, create(MessageSchema, { messageId: "m1" })));
  });

  it("body field: an empty body leaves the field unset; other fields come from the query", () => {
    const got = build("bridge.test.rest.v1.Messaging.UpdateMessage", "/v3/messages/m1", UpdateMessageRequestSchema, { body: "" });
    assert.ok(equals(UpdateMessageRequestSchema, got as never, create(UpdateMessageRequestSchema, { messageId: "m1" })));
    const created = build("bridge.test.rest.v1.Library.CreateBook", "/v1/shelves/s/books", CreateBookRequestSchema, { body: '{"title":"x"}', query: "requestId=r" });
    assert.ok(equals(CreateBookRequestSchema, created as never, create(CreateBookRequestSchema, { parent: "shelves/s", book: { title: "x" }, requestId: "r" })));
  });

  it("a query parameter naming the body field is refused", () => {
    assert.throws(
      () => build("bridge.test.rest.v1.Library.CreateBook", "/v1/shelves/s/books", CreateBookRequestSchema, { body: "{}", query: "book.title=x" }),
      (e: ConnectError) => e.code === Code.InvalidArgument && /field "book" is bound by the path or the body/.test(e.rawMessage),
    );
  });

  it("a body that is not a JSON object for body \"*\" is invalid_argument", () => {
    assert.throws(
      () => build("bridge.test.rest.v1.Messaging.UpdateMessageAll", "/v4/messages/m1", MessageSchema, { body: "[1]" }),
      (e: ConnectError) => e.code === Code.InvalidArgument && /must be a JSON object/.test(e.rawMessage),
    );
  });
});

describe("REST responses", () => {
  it("response_body of an unset list is []", () => {
    const out = responseBody(binding("bridge.test.rest.v1.Library.ListBooks"), toBinary(ListBooksResponseSchema, create(ListBooksResponseSchema)), types);
    assert.equal(out.body.toString(), "[]");
    assert.equal(out.contentType, "application/json");
  });

  it("google.rpc.Status: details the schema knows as JSON Any, others with their bytes", () => {
    const known = toBinary(FailureDetailSchema, create(FailureDetailSchema, { reason: "r" }));
    const error = new ConnectError("m", Code.Aborted, undefined, [
      { type: FailureDetailSchema.typeName, value: known },
      { type: "unknown.v1.Thing", value: new Uint8Array([1, 2]) },
    ] as never);
    assert.deepEqual(statusJson(error, types), {
      code: 10,
      message: "m",
      details: [
        { "@type": "type.googleapis.com/bridge.test.rest.v1.FailureDetail", reason: "r" },
        { "@type": "type.googleapis.com/unknown.v1.Thing", value: "AQI=" },
      ],
    });
  });
});

describe("REST responses: HttpBody", () => {
  it("regression: an HttpBody whose content type is application/json is still raw bytes, not a message to wrap in an NDJSON line", () => {
    const payload = toBinary(HttpBodySchema, create(HttpBodySchema, { contentType: "application/json", data: Buffer.from('{"a":1}') }));
    const out = responseBody(binding("bridge.test.rest.v1.Library.EchoRaw"), payload, types);
    assert.equal(out.raw, true);
    assert.equal(out.contentType, "application/json");
    assert.equal(out.body.toString(), '{"a":1}');
  });
});
