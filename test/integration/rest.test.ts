/**
 * REST transcoding (google.api.http) through the bridge to a real
 * @grpc/grpc-js + @grpc/proto-loader upstream, with curl and fetch as the
 * REST clients and the schema from a descriptor set built by buf. Each case
 * decodes the request message the upstream received and compares it with
 * what the annotation means in google/api/http.proto; its documented
 * examples are cases of their own, named after them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import * as http from "node:http";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { create, equals, fromBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CreateBookRequestSchema,
  GetFileRequestSchema,
  GetMessageByNameRequestSchema,
  GetMessageRequestSchema,
  MessageSchema,
  PublishBookRequestSchema,
  QueryRequestSchema,
  ReplaceBookRequestSchema,
  SearchRequestSchema,
  UpdateMessageRequestSchema,
  UploadCoverRequestSchema,
  View,
} from "../../gen/bridge/test/rest/v1/rest_pb.js";
import { buildDescriptorSet } from "../support/schema-upstream.js";
import { startRestUpstream, type RestUpstream } from "../support/rest-upstream.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { descriptorSetWithRules } from "../support/rest-conflict.js";
import { createBridge } from "../../src/index.js";
import { loadConfig } from "../../src/config/load.js";
import { runCli } from "../support/cli-process.js";

const run = promisify(execFile);

/** curl as a user runs it: HTTP status, headers (lower-case names) and body. */
async function curl(...args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { stdout } = await run("curl", ["-sS", "-i", "--http1.1", ...args]);
  const split = stdout.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = stdout.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: stdout.slice(split + 4) };
}

describe("REST transcoding (google.api.http)", () => {
  let upstream: RestUpstream;
  let bridge: RunningBridge;
  let descriptorSet: string;

  before(async () => {
    upstream = await startRestUpstream();
    descriptorSet = await buildDescriptorSet();
    bridge = await startBridge(upstream.address, { schema: { descriptorSets: [descriptorSet] }, rest: { enabled: true } });
  });
  after(async () => {
    await bridge?.close();
    await upstream?.close();
    if (descriptorSet) rmSync(dirname(descriptorSet), { recursive: true, force: true });
  });

  /** The last request message `method` received, decoded with `schema`, must equal `expected`. */
  function assertReceived<Desc extends DescMessage>(method: string, schema: Desc, expected: MessageInitShape<Desc>): void {
    const list = upstream.received.get(method);
    assert.ok(list !== undefined && list.length > 0, `${method} received nothing`);
    const got = fromBinary(schema, list.at(-1)!);
    const want = create(schema, expected);
    assert.ok(equals(schema, got, want), `${method} received ${JSON.stringify(got, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
  }

  const fetchJson = async (path: string, init?: RequestInit) => {
    const response = await fetch(bridge.baseUrl + path, init);
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: text === "" ? undefined : JSON.parse(text) };
  };

  it('http.proto example: get "/v1/{name=messages/*}": GET /v1/messages/123456 is GetMessage(name: "messages/123456")', async () => {
    const { status, json } = await fetchJson("/v1/messages/123456");
    assert.equal(status, 200);
    assert.deepEqual(json, { name: "messages/123456" });
    assertReceived("/bridge.test.rest.v1.Messaging/GetMessageByName", GetMessageByNameRequestSchema, { name: "messages/123456" });
  });

  it('http.proto example: query parameters: GET /v1/messages/123456?revision=2&sub.subfield=foo is GetMessage(message_id: "123456" revision: 2 sub: SubMessage(subfield: "foo"))', async () => {
    const { status, json } = await fetchJson("/v2/messages/123456?revision=2&sub.subfield=foo");
    assert.equal(status, 200);
    assert.deepEqual(json, { messageId: "123456", revision: "2", sub: { subfield: "foo" } });
    assertReceived("/bridge.test.rest.v1.Messaging/GetMessage", GetMessageRequestSchema, { messageId: "123456", revision: 2n, sub: { subfield: "foo" } });
  });

  it('http.proto example: additional_bindings: GET /v1/users/me/messages/123456 is GetMessage(user_id: "me" message_id: "123456")', async () => {
    const { status } = await fetchJson("/v2/users/me/messages/123456");
    assert.equal(status, 200);
    assertReceived("/bridge.test.rest.v1.Messaging/GetMessage", GetMessageRequestSchema, { messageId: "123456", userId: "me" });
    // The main binding still answers alone.
    await fetchJson("/v2/messages/123456");
    assertReceived("/bridge.test.rest.v1.Messaging/GetMessage", GetMessageRequestSchema, { messageId: "123456" });
  });

  it('http.proto example: body "message": PATCH /v1/messages/123456 { "text": "Hi!" } is UpdateMessage(message_id: "123456" message { text: "Hi!" })', async () => {
    const { status, json } = await fetchJson("/v3/messages/123456", { method: "PATCH", headers: { "content-type": "application/json" }, body: '{ "text": "Hi!" }' });
    assert.equal(status, 200);
    assert.deepEqual(json, { messageId: "123456", message: { text: "Hi!" } });
    assertReceived("/bridge.test.rest.v1.Messaging/UpdateMessage", UpdateMessageRequestSchema, { messageId: "123456", message: { text: "Hi!" } });
  });

  it('http.proto example: body "*": PATCH /v1/messages/123456 { "text": "Hi!" } is UpdateMessage(message_id: "123456" text: "Hi!")', async () => {
    const { status, json } = await fetchJson("/v4/messages/123456", { method: "PATCH", body: '{ "text": "Hi!" }' });
    assert.equal(status, 200);
    assert.deepEqual(json, { messageId: "123456", text: "Hi!" });
    assertReceived("/bridge.test.rest.v1.Messaging/UpdateMessageAll", MessageSchema, { messageId: "123456", text: "Hi!" });
  });

  it("GET with path variables and query parameters of every kind (nested, repeated, enums, well-known types), with curl", async () => {
    const query = [
      "filter.author=Ann%20Lee",
      "filter.year=1999",
      "filter.pages.min=10",
      "tags=a",
      "tags=b%2Cc",
      "ids=1",
      "ids=2",
      "updatedAfter=2024-01-02T03:04:05Z",
      "timeout=1.5s",
      "read_mask=title,filter.author",
      "limit=7",
      "flag=false",
      "view=VIEW_FULL",
      "views=VIEW_BASIC",
      "views=2",
      "with_stats=true",
      "score=0.5",
      "token=AAH_",
      "big=18446744073709551615",
    ].join("&");
    const { status, body } = await curl(`${bridge.baseUrl}/v1/shelves/s%201/books?${query}`);
    assert.equal(status, 200, body);
    const expected = {
      shelf: "shelves/s 1",
      filter: { author: "Ann Lee", year: 1999, pages: { min: 10 } },
      tags: ["a", "b,c"],
      ids: [1, 2],
      updatedAfter: timestampFromDate(new Date("2024-01-02T03:04:05Z")),
      timeout: { seconds: 1n, nanos: 500_000_000 },
      readMask: { paths: ["title", "filter.author"] },
      limit: 7,
      flag: false,
      view: View.FULL,
      views: [View.BASIC, View.FULL],
      withStats: true,
      score: 0.5,
      token: new Uint8Array([0, 1, 255]),
      big: 18446744073709551615n,
    };
    assertReceived("/bridge.test.rest.v1.Library/QueryBooks", QueryRequestSchema, expected);
    // The response is canonical proto3 JSON of the same message.
    assert.deepEqual(JSON.parse(body), {
      shelf: "shelves/s 1",
      filter: { author: "Ann Lee", year: 1999, pages: { min: 10 } },
      tags: ["a", "b,c"],
      ids: [1, 2],
      updatedAfter: "2024-01-02T03:04:05Z",
      timeout: "1.500s",
      readMask: "title,filter.author",
      limit: 7,
      flag: false,
      view: "VIEW_FULL",
      views: ["VIEW_BASIC", "VIEW_FULL"],
      withStats: true,
      score: 0.5,
      token: "AAH/",
      big: "18446744073709551615",
    });
  });

  it("refuses query parameters that name no field, a path-bound field, a message or a bad value: 400 with google.rpc.Status", async () => {
    for (const [query, message] of [
      ["nope=1", /query parameter "nope": bridge\.test\.rest\.v1\.QueryRequest has no field "nope"/],
      ["shelf=x", /field "shelf" is bound by the path or the body/],
      ["filter=x", /is a message: name one of its fields/],
      ["with_stats=maybe", /"maybe" is not a boolean/],
      ["ids=abc", /request does not make a valid bridge\.test\.rest\.v1\.QueryRequest/],
    ] as const) {
      const { status, json, headers } = await fetchJson(`/v1/shelves/s1/books?${query}`);
      assert.equal(status, 400, query);
      assert.equal(headers.get("content-type"), "application/json");
      assert.equal(json.code, 3, query);
      assert.match(json.message, message);
    }
  });

  it('POST with body "book" and a query parameter for the rest', async () => {
    const { status, json } = await fetchJson("/v1/shelves/s1/books?request_id=r-1", {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ title: "T", author: "A" }),
    });
    assert.equal(status, 200);
    assert.deepEqual(json, { parent: "shelves/s1", book: { title: "T", author: "A" }, requestId: "r-1" });
    assertReceived("/bridge.test.rest.v1.Library/CreateBook", CreateBookRequestSchema, { parent: "shelves/s1", book: { title: "T", author: "A" }, requestId: "r-1" });
  });

  it("PUT binds a nested field from the path into the body's message", async () => {
    const { status, json } = await fetchJson("/v1/shelves/s1/books/b1", { method: "PUT", body: JSON.stringify({ title: "New", name: "ignored" }) });
    assert.equal(status, 200);
    assert.deepEqual(json, { name: "shelves/s1/books/b1", title: "New" });
    assertReceived("/bridge.test.rest.v1.Library/ReplaceBook", ReplaceBookRequestSchema, { book: { name: "shelves/s1/books/b1", title: "New" } });
  });

  it("DELETE answers google.protobuf.Empty as {}", async () => {
    const { status, text } = await fetchJson("/v1/shelves/s1/books/b1", { method: "DELETE" });
    assert.equal(status, 200);
    assert.equal(text, "{}");
  });

  it("a :verb suffix (POST ...:publish, body \"*\"), with metadata both ways", async () => {
    const response = await fetch(`${bridge.baseUrl}/v1/shelves/s1/books/b1:publish`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-test": "hello" },
      body: JSON.stringify({ edition: "2nd", when: "2024-01-01T00:00:00Z" }),
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { name: "shelves/s1/books/b1", edition: "2nd", when: "2024-01-01T00:00:00Z" });
    assertReceived("/bridge.test.rest.v1.Library/PublishBook", PublishBookRequestSchema, {
      name: "shelves/s1/books/b1",
      edition: "2nd",
      when: timestampFromDate(new Date("2024-01-01T00:00:00Z")),
    });
    // Request headers became metadata; response headers and trailers came back as for Connect unary.
    assert.equal(upstream.metadata.get("/bridge.test.rest.v1.Library/PublishBook")?.["x-test"], "hello");
    assert.equal(response.headers.get("x-test-echo"), "hello");
    assert.equal(response.headers.get("trailer-x-trailer"), "hello");
    // Without the verb, no binding takes the path.
    const bare = await fetchJson("/v1/shelves/s1/books/b1", { method: "POST", body: "{}" });
    assert.equal(bare.status, 404);
  });

  it("a custom HTTP method (custom: {kind: \"SEARCH\"}), with curl -X SEARCH", async () => {
    const { status, body } = await curl("-X", "SEARCH", "-H", "content-type: application/json", "--data-binary", '{"query":"dune"}', `${bridge.baseUrl}/v1/books`);
    assert.equal(status, 200, body);
    assert.deepEqual(JSON.parse(body), { query: "dune" });
    assertReceived("/bridge.test.rest.v1.Library/SearchBooks", SearchRequestSchema, { query: "dune" });
  });

  it("URL decoding: a single-segment variable decodes %2F; a multi-segment one (files/**) keeps it encoded", async () => {
    await fetchJson("/v2/messages/a%2Fb%20c");
    assertReceived("/bridge.test.rest.v1.Messaging/GetMessage", GetMessageRequestSchema, { messageId: "a/b c" });
    const { status, json } = await fetchJson("/v1/files/dir%2Fname/x%20y/z");
    assert.equal(status, 200);
    assert.deepEqual(json, { path: "files/dir%2Fname/x y/z" });
    assertReceived("/bridge.test.rest.v1.Library/GetFile", GetFileRequestSchema, { path: "files/dir%2Fname/x y/z" });
    await fetchJson("/v1/files");
    assertReceived("/bridge.test.rest.v1.Library/GetFile", GetFileRequestSchema, { path: "files" });
  });

  it("response_body: the HTTP body is the named field (a JSON array)", async () => {
    const { status, json } = await fetchJson("/v1/shelves/s1/books:list");
    assert.equal(status, 200);
    assert.deepEqual(json, [
      { name: "shelves/s1/books/1", title: "One" },
      { name: "shelves/s1/books/2", title: "Two" },
    ]);
  });

  it("google.api.HttpBody: a body field in, the response out, as raw bytes with their content type", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    const response = await fetch(`${bridge.baseUrl}/v1/shelves/s1/books/b1/cover`, { method: "PUT", headers: { "content-type": "image/png" }, body: png });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "image/png");
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), Buffer.concat([Buffer.from("shelves/s1/books/b1:"), png]));
    assertReceived("/bridge.test.rest.v1.Library/UploadCover", UploadCoverRequestSchema, { name: "shelves/s1/books/b1", cover: { contentType: "image/png", data: png } });
  });

  it('google.api.HttpBody as the whole request (body "*") and response, with curl', async () => {
    const { status, headers, body } = await curl("-H", "content-type: text/csv", "--data-binary", "a,b\n1,2\n", `${bridge.baseUrl}/v1/raw:echo`);
    assert.equal(status, 200);
    assert.equal(headers["content-type"], "text/csv");
    assert.equal(body, "a,b\n1,2\n");
  });

  it("errors: google.rpc.Status JSON with the HTTP status for the code, details resolved through the schema", async () => {
    const { status, headers, body } = await curl(
      "-H",
      "content-type: application/json",
      "--data-binary",
      '{"code":5,"message":"no such book","withDetails":true}',
      `${bridge.baseUrl}/v1/fail`,
    );
    assert.equal(status, 404);
    assert.equal(headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(body), {
      code: 5,
      message: "no such book",
      details: [{ "@type": "type.googleapis.com/bridge.test.rest.v1.FailureDetail", reason: "test-reason", retryAfterMs: "1500" }],
    });
    for (const [code, http] of [
      [3, 400],
      [7, 403],
      [9, 400],
      [16, 401],
      [14, 503],
      [8, 429],
    ]) {
      const failed = await fetchJson("/v1/fail", { method: "POST", body: JSON.stringify({ code, message: "m" }) });
      assert.equal(failed.status, http, `code ${code}`);
      assert.deepEqual(failed.json, { code, message: "m" });
    }
  });

  it("server streaming: newline-delimited {\"result\": ...} lines", async () => {
    const response = await fetch(`${bridge.baseUrl}/v1/shelves/s1:watch?count=3`, { headers: { "x-test": "w" } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/x-ndjson");
    assert.equal(response.headers.get("x-test-echo"), "w");
    const lines = (await response.text()).split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(
      lines.map((line) => JSON.parse(line)),
      [0, 1, 2].map((i) => ({ result: { name: `shelves/s1/books/${i}`, title: `Book ${i}` } })),
    );
  });

  it("server streaming: an error after messages is a last line {\"error\": google.rpc.Status}; trailers are HTTP trailers", async () => {
    const { status, body } = await curl(`${bridge.baseUrl}/v1/shelves/s1:watch?count=2&fail_code=10`);
    assert.equal(status, 200);
    const lines = body.trimEnd().split("\n").map((line) => JSON.parse(line));
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[1], { result: { name: "shelves/s1/books/1", title: "Book 1" } });
    assert.deepEqual(lines[2], {
      error: {
        code: 10,
        message: "watch failed",
        details: [{ "@type": "type.googleapis.com/bridge.test.rest.v1.FailureDetail", reason: "test-reason", retryAfterMs: "1500" }],
      },
    });
    // Trailers of a successful stream arrive as HTTP trailers.
    const trailers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      http
        .get(`${bridge.baseUrl}/v1/shelves/s1:watch?count=1`, { headers: { "x-test": "t" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.trailers));
        })
        .on("error", reject);
    });
    assert.equal(trailers["x-trailer"], "t");
  });

  it("server streaming: an error before any message is an ordinary REST error", async () => {
    const { status, json } = await fetchJson("/v1/shelves/s1:watch?fail_code=5");
    assert.equal(status, 404);
    assert.equal(json.code, 5);
    assert.equal(json.message, "watch failed");
  });

  it("an unmatched path is a 404 in google.rpc.Status form; RPC paths keep their protocols", async () => {
    const missing = await fetchJson("/v1/nothing/here");
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, { code: 5, message: "no REST route for GET /v1/nothing/here" });
    const wrongVerb = await fetchJson("/v1/messages/1", { method: "DELETE" });
    assert.equal(wrongVerb.status, 404);
    // Connect unary JSON at the RPC path still works with REST on.
    const connect = await fetchJson("/bridge.test.rest.v1.Library/DeleteBook", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(connect.status, 200);
    assert.equal(connect.text, "{}");
    const unknownRpc = await fetchJson("/bridge.test.rest.v1.Library/Nope", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(unknownRpc.status, 404);
    assert.equal(unknownRpc.json.code, "unimplemented"); // Connect's own error form
  });

  it("refuses a JSON binding's body in another content type (415), and invalid JSON (400)", async () => {
    const wrongType = await fetchJson("/v1/shelves/s1/books", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "a=1" });
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.json.code, 3);
    const invalid = await fetchJson("/v1/shelves/s1/books", { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
    assert.equal(invalid.status, 400);
    assert.match(invalid.json.message, /not valid JSON/);
  });
});

describe("REST at start", () => {
  it("refuses conflicting routes when the bridge starts, naming both", async () => {
    const app = createBridge({
      upstream: "127.0.0.1:1",
      schema: { descriptorSets: [descriptorSetWithRules({ A: { pattern: { case: "get", value: "/v1/{name=items/*}" } }, B: { pattern: { case: "get", value: "/v1/items/{name}" } } })] },
      rest: { enabled: true },
    });
    await assert.rejects(async () => void (await app.ready()), /REST route conflict: conflict\.v1\.Svc\.A and conflict\.v1\.Svc\.B: both bind GET \/v1\/items\/\*/);
    await app.close().catch(() => undefined);
  });

  it("refuses a REST route that shadows an RPC path, naming the binding and the RPC", async () => {
    const app = createBridge({
      upstream: "127.0.0.1:1",
      schema: { descriptorSets: [descriptorSetWithRules({ A: { pattern: { case: "post", value: "/conflict.v1.Svc/{name}" }, body: "*" } })] },
      rest: { enabled: true },
    });
    await assert.rejects(async () => void (await app.ready()), /conflict\.v1\.Svc\.A and RPC \/conflict\.v1\.Svc\/A/);
    await app.close().catch(() => undefined);
  });

  it("rest.enabled without a schema is a start-up error saying what to add", async () => {
    const app = createBridge({ upstream: "127.0.0.1:1", rest: { enabled: true } });
    await assert.rejects(async () => void (await app.ready()), /"rest\.enabled" needs a schema/);
    await app.close().catch(() => undefined);
  });

  it("--rest and CONNECT_GRPC_BRIDGE_REST turn REST on; it is off by default", () => {
    assert.equal(loadConfig({ upstream: "127.0.0.1:1", rest: true }, {}).config.rest.enabled, true);
    assert.equal(loadConfig({ upstream: "127.0.0.1:1" }, { CONNECT_GRPC_BRIDGE_REST: "true" }).config.rest.enabled, true);
    assert.equal(loadConfig({ upstream: "127.0.0.1:1" }, {}).config.rest.enabled, false);
  });
});

describe("REST from the CLI, with the schema from server reflection", () => {
  it("--reflection --rest loads the routes from the upstream at start and serves them", async () => {
    const upstream = await startRestUpstream({ reflection: true });
    const cli = runCli(["--upstream", upstream.address, "--port", "0", "--reflection", "--rest", "--log-level", "info"]);
    try {
      const base = await cli.listening();
      assert.match(cli.out() + cli.err(), /REST routes loaded/);
      const { status, body } = await curl(`${base}/v2/users/me/messages/7?revision=3`);
      assert.equal(status, 200, body);
      assert.deepEqual(JSON.parse(body), { messageId: "7", revision: "3", userId: "me" });
      const failed = await curl("-H", "content-type: application/json", "--data-binary", '{"code":9,"message":"later","withDetails":true}', `${base}/v1/fail`);
      assert.equal(failed.status, 400);
      assert.deepEqual(JSON.parse(failed.body).details, [{ "@type": "type.googleapis.com/bridge.test.rest.v1.FailureDetail", reason: "test-reason", retryAfterMs: "1500" }]);
    } finally {
      cli.child.kill("SIGTERM");
      await cli.exited;
      await upstream.close();
    }
  });

  it("--reflection --rest fails at start, naming the upstream, when reflection cannot be had", async () => {
    const upstream = await startRestUpstream({ reflection: false });
    const cli = runCli(["--upstream", upstream.address, "--port", "0", "--reflection", "--rest"]);
    try {
      assert.notEqual(await cli.exited, 0);
      assert.match(cli.err(), new RegExp(`REST routes need the schema at start, but server reflection of upstream ${upstream.address.replace(/\./g, "\\.")} failed`));
    } finally {
      await upstream.close();
    }
  });
});
