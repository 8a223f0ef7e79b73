/**
 * Path templates: the grammar and URL-decoding rules of google/api/http.proto,
 * with its own documented examples.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { matchTemplate, parseTemplate, TemplateError } from "../../src/rest/path-template.js";

const match = (template: string, path: string) => {
  const bindings = matchTemplate(parseTemplate(template), path);
  return bindings === undefined ? undefined : Object.fromEntries(bindings.map((b) => [b.fieldPath, b.value]));
};

describe("path templates (google/api/http.proto)", () => {
  it('http.proto example: get "/v1/{name=messages/*}" matches GET /v1/messages/123456 as name "messages/123456"', () => {
    assert.deepEqual(match("/v1/{name=messages/*}", "/v1/messages/123456"), { name: "messages/123456" });
    assert.equal(match("/v1/{name=messages/*}", "/v1/messages/123456/extra"), undefined);
    assert.equal(match("/v1/{name=messages/*}", "/v1/books/123456"), undefined);
  });

  it('http.proto example: "/v1/messages/{message_id}" binds message_id', () => {
    assert.deepEqual(match("/v1/messages/{message_id}", "/v1/messages/123456"), { message_id: "123456" });
  });

  it('http.proto example: additional binding "/v1/users/{user_id}/messages/{message_id}" binds both', () => {
    assert.deepEqual(match("/v1/users/{user_id}/messages/{message_id}", "/v1/users/me/messages/123456"), { user_id: "me", message_id: "123456" });
  });

  it('http.proto example: "/v1/messages/{message_id}/{sub.subfield}" binds a nested field path', () => {
    assert.deepEqual(match("/v1/messages/{message_id}/{sub.subfield}", "/v1/messages/1/foo"), { message_id: "1", "sub.subfield": "foo" });
  });

  it("parses segments, variables and the verb into a structure", () => {
    const t = parseTemplate("/v1/{name=shelves/*/books/*}:publish");
    assert.equal(t.verb, "publish");
    assert.deepEqual(t.segments, [{ kind: "literal", value: "v1" }, { kind: "literal", value: "shelves" }, { kind: "single" }, { kind: "literal", value: "books" }, { kind: "single" }]);
    assert.deepEqual(t.variables, [{ fieldPath: "name", start: 1, end: 5, singleSegment: false }]);
    assert.equal(t.shape, "/v1/shelves/*/books/*:publish");
    assert.equal(parseTemplate("/v1/{name}").variables[0].singleSegment, true);
    assert.equal(parseTemplate("/v1/{name=*}").shape, parseTemplate("/v1/{id}").shape);
  });

  it("a :verb suffix must be present (and is not part of the last variable)", () => {
    assert.deepEqual(match("/v1/{name=shelves/*/books/*}:publish", "/v1/shelves/1/books/2:publish"), { name: "shelves/1/books/2" });
    assert.equal(match("/v1/{name=shelves/*/books/*}:publish", "/v1/shelves/1/books/2"), undefined);
    assert.equal(match("/v1/{name=shelves/*/books/*}:publish", "/v1/shelves/1/books/2:unpublish"), undefined);
    // Without a verb in the template, a colon is part of the segment.
    assert.deepEqual(match("/v1/{name}", "/v1/a:b"), { name: "a:b" });
  });

  it("** matches zero or more segments, only as the last segment", () => {
    assert.deepEqual(match("/v1/{path=files/**}", "/v1/files/a/b/c"), { path: "files/a/b/c" });
    assert.deepEqual(match("/v1/{path=files/**}", "/v1/files"), { path: "files" });
    assert.deepEqual(match("/v1/{path=**}:get", "/v1/x/y:get"), { path: "x/y" });
    assert.deepEqual(match("/static/**", "/static/a/b"), {});
    assert.equal(match("/v1/{path=files/**}", "/v1/other/a"), undefined);
    assert.throws(() => parseTemplate("/v1/**/x"), TemplateError);
  });

  it("single-segment variables decode every percent-escape, %2F included", () => {
    assert.deepEqual(match("/v1/messages/{message_id}", "/v1/messages/a%2Fb%20c%3A"), { message_id: "a/b c:" });
  });

  it("multi-segment variables decode all but %2F / %2f, which stay as sent", () => {
    assert.deepEqual(match("/v1/{path=files/**}", "/v1/files/a%2Fb/c%20d/e%2ff"), { path: "files/a%2Fb/c d/e%2ff" });
    assert.deepEqual(match("/v1/{name=shelves/*}", "/v1/shelves/x%2Fy"), { name: "shelves/x%2Fy" });
  });

  it("literals compare decoded; empty segments and bad escapes do not match", () => {
    assert.deepEqual(match("/v1/my books/{id}", "/v1/my%20books/1"), { id: "1" });
    assert.equal(match("/v1/{id}", "/v1/"), undefined);
    assert.equal(match("/v1/{path=**}", "/v1/a//b"), undefined);
    assert.equal(match("/v1/{id}", "/v1/%zz"), undefined);
    assert.equal(match("/v1/{id}", "v1/1"), undefined);
  });

  it("rejects templates outside the grammar, saying why", () => {
    for (const [template, reason] of [
      ["v1/x", /start with "\/"/],
      ["/v1/{a=b/{c}}", /must not contain another variable/],
      ["/v1/{a", /unclosed/],
      ["/v1//x", /empty segment/],
      ["/v1/{a}/{a}", /bound twice/],
      ["/v1/{1a}", /not a field path/],
      ["/v1/x:", /verb/],
    ] as const) {
      assert.throws(() => parseTemplate(template), (e: Error) => e instanceof TemplateError && reason.test(e.message) && e.message.includes(template), template);
    }
  });
});
