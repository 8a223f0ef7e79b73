/**
 * Features that are not configured are not loaded: every module held is
 * live heap that each full GC marks again (issue 15). A child process
 * records every module it loads (module.register's load hook, asked for over
 * a MessagePort at the end) while it starts a bridge, so the test sees what a real
 * start loads and nothing of this test process's own imports.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildDescriptorSet } from "../support/schema-upstream.js";

const dir = mkdtempSync(join(tmpdir(), "bridge-loaded-modules-"));
const hooks = join(dir, "hooks.mjs");
writeFileSync(
  hooks,
  `const urls = [];
export function initialize({ port }) { port.on("message", () => port.postMessage(urls)); }
export async function load(url, context, next) { urls.push(url); return next(url, context); }
`,
);
const index = pathToFileURL(new URL("../../src/index.js", import.meta.url).pathname).href;

/** The URLs of every module a bridge started with `options` loaded. */
async function modulesLoaded(options: Record<string, unknown>): Promise<string[]> {
  const script = join(dir, `start-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";
import { once } from "node:events";
const { port1, port2 } = new MessageChannel();
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { port: port2 }, transferList: [port2] });
const { createBridge } = await import(${JSON.stringify(index)});
const app = createBridge(${JSON.stringify(options)});
await app.ready();
await app.close();
// The hooks thread answers after every load it ran: the list is complete.
port1.postMessage("list");
const [urls] = await once(port1, "message");
console.log(JSON.stringify(urls));
process.exit(0);
`,
  );
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [script], (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))),
  );
  return JSON.parse(stdout) as string[];
}

/** The node_modules packages a bridge started with `options` loaded. */
async function packagesLoaded(options: Record<string, unknown>): Promise<Set<string>> {
  const packages = new Set<string>();
  for (const url of await modulesLoaded(options)) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (match) packages.add(match[1]);
  }
  return packages;
}

/** The bridge's own modules among `urls`, as paths under src/ ("schema/transcode.js"). */
function ownModules(urls: string[]): string[] {
  const src = new URL("../../src/", import.meta.url).href;
  return urls.filter((url) => url.startsWith(src)).map((url) => url.slice(src.length));
}

const upstream = "127.0.0.1:1";

describe("loaded modules (issue 15: an unconfigured feature costs no heap)", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));
  it("a bridge without metrics, tracing or a config file loads neither prom-client, @opentelemetry nor yaml", async () => {
    const loaded = await packagesLoaded({ upstream });
    assert.ok(loaded.has("fastify"), `the hook saw the bridge's own imports: ${[...loaded].join(", ")}`);
    for (const name of ["prom-client", "@opentelemetry/api", "@opentelemetry/core", "yaml"]) {
      assert.ok(!loaded.has(name), `${name} was loaded: ${[...loaded].join(", ")}`);
    }
  });

  it("a bridge without a schema, REST, OpenAPI or health checks loads neither transcoding, the REST adapter, the OpenAPI builder nor the health checker's messages", async () => {
    const urls = await modulesLoaded({ upstream });
    const own = ownModules(urls);
    assert.ok(own.includes("plugin.js"), `the hook saw the bridge's own modules: ${own.join(", ")}`);
    const unwanted = own.filter((path) => /^(schema\/(?!reflection-gate|passthrough-hint)|rest\/|openapi\/|inbound\/rest\.js)/.test(path));
    assert.deepEqual(unwanted, [], `loaded without being configured: ${unwanted.join(", ")}`);
    const health = urls.filter((url) => url.includes("/gen/grpc/health/"));
    assert.deepEqual(health, [], "the generated health messages were loaded");
  });

  it("a schema with REST and OpenAPI loads transcoding, the REST adapter and the OpenAPI builder", async () => {
    const descriptorSet = await buildDescriptorSet();
    after(() => rmSync(dirname(descriptorSet), { recursive: true, force: true }));
    const own = ownModules(
      await modulesLoaded({ upstream, schema: { descriptorSets: [descriptorSet] }, rest: { enabled: true }, openapi: { on: "data" } }),
    );
    for (const path of ["schema/transcode.js", "inbound/rest.js", "rest/routes.js", "openapi/route.js"]) {
      assert.ok(own.includes(path), `${path} was not loaded: ${own.join(", ")}`);
    }
  });

  it("metrics on loads prom-client; tracing on loads @opentelemetry/api", async () => {
    const loaded = await packagesLoaded({ upstream, metrics: { enabled: true }, tracing: { enabled: true } });
    assert.ok(loaded.has("prom-client"), [...loaded].join(", "));
    assert.ok(loaded.has("@opentelemetry/api"), [...loaded].join(", "));
  });
});
