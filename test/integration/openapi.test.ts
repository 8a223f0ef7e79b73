/**
 * The OpenAPI document served on the data port (a GET route beside the
 * calls, under the plugin's prefix) and printed by `--print-openapi`;
 * paths that would shadow an RPC or a REST route are refused at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import Fastify from "fastify";
import { Validator } from "@seriousme/openapi-schema-validator";
import { createBridge, grpcBridge } from "../../src/index.js";
import { buildDescriptorSet } from "../support/schema-upstream.js";
import { startRestUpstream } from "../support/rest-upstream.js";
import { startBridge } from "../support/bridge.js";
import { runCli } from "../support/cli-process.js";

const descriptorFile = await buildDescriptorSet();
const descriptorBytes = readFileSync(descriptorFile);
test.after(() => rmSync(dirname(descriptorFile), { recursive: true, force: true }));

// No call reaches it: the document needs only the schema.
const upstream = "127.0.0.1:1";

async function assertValid(document: unknown): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(document as never);
  assert.ok(result.valid, JSON.stringify(result.errors)?.slice(0, 1000));
  assert.equal(validator.version, "3.1");
}

test("openapi on the data port: GET serves the document; other verbs at its path are still refused as calls", async (t) => {
  const bridge = await startBridge(upstream, { schema: { descriptorSets: [descriptorBytes] }, rest: { enabled: true }, openapi: { on: "data" }, cors: false });
  t.after(() => bridge.close());
  const response = await fetch(`${bridge.baseUrl}/openapi.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const document = (await response.json()) as { paths: Record<string, unknown>; info: { title: string }; servers?: unknown };
  await assertValid(document);
  assert.equal(document.info.title, "connect-grpc-bridge REST API");
  assert.ok("/v2/messages/{message_id}" in document.paths);
  assert.equal(document.servers, undefined);
  const post = await fetch(`${bridge.baseUrl}/openapi.json`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(post.status, 404);
  // With REST on, an unmatched path is a REST 404 (google.rpc.Status).
  assert.match(((await post.json()) as { message: string }).message, /no REST route for POST \/openapi.json/);
});

test("openapi under a plugin prefix: served there, with the prefix as the document's server", async (t) => {
  const app = Fastify();
  t.after(() => app.close());
  await app.register(grpcBridge, {
    prefix: "/api",
    upstream,
    schema: { descriptorSets: [descriptorBytes] },
    rest: { enabled: true },
    openapi: { on: "data", path: "/docs/openapi.json", title: "Library", version: "2" },
  } as never);
  const response = await app.inject({ method: "GET", url: "/api/docs/openapi.json" });
  assert.equal(response.statusCode, 200);
  const document = response.json() as { servers: { url: string }[]; info: unknown };
  assert.deepEqual(document.servers, [{ url: "/api" }]);
  assert.deepEqual(document.info, { title: "Library", version: "2" });
});

test("openapi.path refused at start: an RPC path's form, a path a REST binding takes; openapi without REST", async () => {
  const start = async (options: Record<string, unknown>) => {
    const app = createBridge({ upstream, rest: { enabled: true }, ...options } as never);
    try {
      await app.ready();
    } finally {
      await app.close();
    }
  };
  await assert.rejects(start({ schema: { descriptorSets: [descriptorBytes] }, openapi: { on: "data", path: "/docs.Api/Spec" } }), /openapi\.path "\/docs\.Api\/Spec" has the form \/package\.Service\/Method/);
  await assert.rejects(
    start({ schema: { descriptorSets: [descriptorBytes] }, openapi: { on: "data", path: "/v1/messages/openapi" } }),
    /openapi\.path "\/v1\/messages\/openapi" is taken by the REST binding bridge\.test\.rest\.v1\.Messaging\.GetMessageByName/,
  );
  await assert.rejects(start({ schema: { descriptorSets: [descriptorBytes] }, rest: { enabled: false }, openapi: { on: "data" } }), /option "openapi" describes the REST routes: it needs "rest\.enabled"/);
  await assert.rejects(start({ schema: { descriptorSets: [descriptorBytes] }, openapi: { on: "web" } }), /openapi\.on.*"admin".*"data"/);
  // The default, the admin port, needs an admin listener: else the document would be served nowhere.
  await assert.rejects(
    start({ schema: { descriptorSets: [descriptorBytes] }, openapi: {} }),
    /option "openapi" is served on the admin port by default, and there is none: set "admin\.port"/,
  );
});

test("--print-openapi prints the document of --descriptor-set and exits; without a schema it says what is missing", async () => {
  const cli = runCli(["--upstream", upstream, "--descriptor-set", descriptorFile, "--print-openapi"]);
  assert.equal(await cli.exited, 0, cli.err());
  const document = JSON.parse(cli.out()) as { paths: Record<string, unknown> };
  await assertValid(document);
  assert.ok("/v1/shelves/{shelf}/books" in document.paths);
  const bare = runCli(["--upstream", upstream, "--print-openapi"]);
  assert.equal(await bare.exited, 2);
  assert.match(bare.err(), /--print-openapi needs a schema: --descriptor-set FILE or --reflection/);
});

test("--print-openapi --reflection asks the upstream's server reflection first; an unreachable upstream is named", async (t) => {
  const server = await startRestUpstream({ reflection: true });
  t.after(() => server.close());
  const cli = runCli(["--upstream", server.address, "--reflection", "--print-openapi"]);
  assert.equal(await cli.exited, 0, cli.err());
  const document = JSON.parse(cli.out()) as { paths: Record<string, Record<string, { operationId: string }>> };
  await assertValid(document);
  assert.equal(document.paths["/v1/shelves/{shelf}:watch"]?.get?.operationId, "Library_WatchShelf");
  const down = runCli(["--upstream", upstream, "--reflection", "--print-openapi"]);
  assert.equal(await down.exited, 2);
  assert.match(down.err(), /server reflection of upstream 127\.0\.0\.1:1 failed/);
});

test("--openapi-path and --openapi-on (and their variables) land in the config", async () => {
  const cli = runCli(["--upstream", upstream, "--openapi-on", "data", "--print-config"], { CONNECT_GRPC_BRIDGE_OPENAPI_PATH: "/spec.json" });
  assert.equal(await cli.exited, 0, cli.err());
  assert.match(cli.out(), /openapi:\n {2}path: \/spec\.json\n {2}on: data\n {2}title: connect-grpc-bridge REST API\n {2}version: "1"/);
  const bad = runCli(["--upstream", upstream, "--openapi-on", "elsewhere", "--print-config"]);
  assert.equal(await bad.exited, 2);
  assert.match(bad.err(), /openapi\.on.*--openapi-on/);
});

test("openapi on the admin port (the default): served there, with the data port as the document's server; not on the data port", async (t) => {
  let adminUrl: string | undefined;
  const app = createBridge({
    upstream,
    schema: { descriptorSets: [descriptorBytes] },
    rest: { enabled: true },
    openapi: {},
    admin: { port: 0, onListening: (url) => (adminUrl = url) },
  });
  t.after(() => app.close());
  await app.listen({ port: 0, host: "127.0.0.1" });
  const dataPort = (app.server.address() as { port: number }).port;
  assert.ok(adminUrl !== undefined, "the admin listener told its URL");
  const response = await fetch(`${adminUrl}/openapi.json`);
  assert.equal(response.status, 200);
  const document = (await response.json()) as { paths: Record<string, unknown>; servers: { url: string }[] };
  await assertValid(document);
  assert.ok("/v2/messages/{message_id}" in document.paths);
  assert.deepEqual(document.servers, [{ url: `http://127.0.0.1:${dataPort}` }]);
  const onData = await fetch(`http://127.0.0.1:${dataPort}/openapi.json`);
  assert.equal(onData.status, 404, "the data port does not serve it unless openapi.on is \"data\"");
  await onData.arrayBuffer();
});

test("openapi on the admin port without REST is refused at start", async () => {
  const app = createBridge({ upstream, schema: { descriptorSets: [descriptorBytes] }, openapi: {}, admin: { port: 0 } });
  await assert.rejects(async () => { await app.ready(); }, /option "openapi" describes the REST routes: it needs "rest\.enabled"/);
  await app.close();
});
