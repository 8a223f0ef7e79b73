/**
 * The plugin's options and the config file are one schema: the same
 * validation (worded for each audience), the same defaults, applied once.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { parse as parseYaml } from "yaml";
import { createBridge, createCluster, grpcBridge, type GrpcBridgeOptions } from "../../src/index.js";
import { resolveOptions } from "../../src/options.js";
import { BridgeOptionsSchema } from "../../src/config/schema.js";
import { defaultClusterOptions } from "../../src/config/deployment.js";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/validate.js";
import { runCli } from "../support/cli-process.js";
import { startGrpcJsServer } from "../support/grpc-js-server.js";
import { echoRequest } from "../support/raw-http.js";

function optionError(options: unknown): string {
  try {
    resolveOptions(options as GrpcBridgeOptions);
  } catch (error) {
    assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`);
    return error.message;
  }
  assert.fail("no error");
}

async function printedConfig(args: string[]): Promise<Record<string, unknown>> {
  const p = runCli([...args, "--print-config"]);
  assert.equal(await p.exited, 0, p.err());
  return parseYaml(p.out());
}

describe("plugin options are checked against the config's schema", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["a limit of zero", { maxRequestBytes: 0 }, /option "maxRequestBytes" must be a positive integer, got 0/],
    ["a limit past 2^32", { maxResponseBytes: 2 ** 33 }, /option "maxResponseBytes" must be a number <= 4294967295, got 8589934592/],
    ["a duration as text", { unaryBodyTimeoutMs: "30s" }, /option "unaryBodyTimeoutMs" must be an integer, got "30s"/],
    ["an upper-case codec", { codecs: ["proto", "JSON"] }, /option "codecs\[1\]" must be a lower-case codec name like "proto", got "JSON"/],
    ["identity as a coding", { acceptCompression: ["identity"] }, /option "acceptCompression\[0\]" must be a lower-case coding name like "gzip" \(not "identity"\), got "identity"/],
    ["an origin without a scheme", { cors: { allowedOrigins: ["app.test"] } }, /option "cors\.allowedOrigins\[0\]" must be an origin like "https:\/\/app\.example\.com", got "app\.test"/],
    ["credentials for any origin", { cors: { allowedOrigins: "*", credentials: true } }, /option "cors\.allowedOrigins" must be a list of origins when cors\.credentials is true/],
    ["an empty descriptor set path", { schema: { descriptorSets: [new Uint8Array(1), ""] } }, /option "schema\.descriptorSets\[1\]" must be a non-empty string, got ""/],
    ["a number as a descriptor set", { schema: { descriptorSets: [5] } }, /option "schema\.descriptorSets\[0\]" must be a descriptor set file .*or its bytes \(Uint8Array\), got 5/],
    ["a misspelt option (was silently ignored)", { maxRequestByte: 10 }, /unknown option "maxRequestByte"; expected one of: .*maxRequestBytes/],
    ["a process-only key", { listen: { port: 1 } }, /unknown option "listen"/],
    ["a misspelt cluster key", { upstream: undefined, clusters: [{ name: "a", endpoints: ["h:1"], lb_policy: "x" }] }, /unknown option "clusters\[0\]\.lb_policy"; expected one of: name, endpoints/],
  ];
  for (const [what, bad, expected] of cases) {
    it(`a bad value names the option path, the value and what was expected: ${what}`, () => {
      assert.match(optionError({ upstream: "127.0.0.1:1", ...bad }), expected);
    });
  }

  it("reports every problem at once", () => {
    const message = optionError({ upstream: "127.0.0.1:1", maxRequestBytes: -1, codecs: "proto", compressMinBytes: 1.5 });
    assert.match(message, /^connect-grpc-bridge: invalid options:\n/);
    for (const line of [
      'option "maxRequestBytes" must be a positive integer, got -1',
      'option "codecs" must be an array, got "proto"',
      'option "compressMinBytes" must be an integer, got 1.5',
    ]) {
      assert.ok(message.includes(`\n  ${line}`), `${line} in:\n${message}`);
    }
  });

  it("grpcBridge refuses bad options at registration, as a TypeError", async () => {
    const app = Fastify();
    app.register(grpcBridge, { upstream: "127.0.0.1:1", maxHeaderEntries: 0 });
    await assert.rejects(async () => { await app.ready(); }, (error: Error) => error instanceof TypeError && /option "maxHeaderEntries" must be a positive integer, got 0/.test(error.message));
    await app.close();
  });

  it("a config file accepted \"identity\" as a coding and credentials for any origin, which the plugin refused (two validators): same checks now, worded for a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-options-"));
    try {
      const file = join(dir, "bridge.yaml");
      writeFileSync(file, "upstream: 127.0.0.1:1\nacceptCompression: [identity]\ncors: { allowedOrigins: '*', credentials: true }\n");
      assert.throws(
        () => loadConfig({ config: file }, {}),
        (error: unknown) => error instanceof ConfigError && error.issues.some((l) => /^acceptCompression\[0\]: got "identity"; expected a lower-case coding name/.test(l)),
      );
      writeFileSync(file, "upstream: 127.0.0.1:1\ncors: { allowedOrigins: '*', credentials: true }\n");
      assert.throws(
        () => loadConfig({ config: file }, {}),
        (error: unknown) => error instanceof ConfigError && /^cors\.allowedOrigins: got "\*"; expected a list of origins when cors\.credentials is true/.test(error.issues[0]!),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("one default table", () => {
  it("the plugin's defaults are --print-config's, key for key of the schema", async () => {
    const printed = await printedConfig(["--upstream", "127.0.0.1:1", "--host", "0.0.0.0"]);
    const plugin = resolveOptions({ upstream: "127.0.0.1:1" }) as unknown as Record<string, unknown>;
    // accessLog: on in the CLI, off in the plugin unless asked (checked below).
    const resolvedElsewhere = new Set(["upstream", "clusters", "routes", "cors", "schema", "accessLog", "metrics", "admin"]);
    const keys = Object.keys(BridgeOptionsSchema.properties).filter((key) => !resolvedElsewhere.has(key));
    assert.ok(keys.length >= 10, keys.join());
    for (const key of keys) assert.deepEqual(plugin[key], printed[key], key);
    assert.deepEqual(printed.accessLog, { enabled: true, successSampleRatio: 1 });
    assert.equal(plugin.accessLog, undefined);
    assert.deepEqual(resolveOptions({ upstream: "127.0.0.1:1", accessLog: {} }).accessLog, printed.accessLog);
  });

  it("--print-config left out the schema's reflection defaults: cors and schema as printed are what the plugin runs", async () => {
    const printed = await printedConfig(["--upstream", "127.0.0.1:1", "--cors-origin", "https://app.test", "--reflection"]);
    const plugin = resolveOptions({ upstream: "127.0.0.1:1", cors: { allowedOrigins: ["https://app.test"] }, schema: { reflection: true } });
    assert.deepEqual(plugin.cors, printed.cors);
    const schema = printed.schema as { descriptorSets: unknown; reflection: unknown; allowGetForAllMethods: unknown };
    assert.deepEqual(schema.reflection, plugin.schema!.reflection);
    assert.deepEqual(schema.reflection, { refreshIntervalMs: 300000, timeoutMs: 10000, maxBackoffMs: 60000, unknownMethodRefetchMs: 2000 });
    assert.deepEqual(schema.descriptorSets, plugin.schema!.descriptorSets);
    assert.equal(schema.allowGetForAllMethods, plugin.schema!.allowGetForAllMethods);
  });

  it("defaultClusterOptions(endpoint) is a cluster of the schema's defaults, as --print-config shows one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-default-cluster-"));
    try {
      writeFileSync(join(dir, "bridge.yaml"), "clusters: [{ name: upstream, endpoints: ['users.internal:50051'] }]\n");
      const printed = await printedConfig(["--config", join(dir, "bridge.yaml")]);
      const cluster = defaultClusterOptions("users.internal:50051");
      const { tls, healthCheck, ...rest } = cluster;
      assert.equal(tls, undefined);
      assert.equal(healthCheck, undefined);
      assert.deepEqual(rest, (printed.clusters as unknown[])[0]);
      assert.deepEqual(defaultClusterOptions("http://[::1]:50051", "local").endpoints, ["[::1]:50051"]);
      assert.throws(() => defaultClusterOptions("users.internal"), /upstream: got "users\.internal"; expected HOST:PORT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what JSON cannot hold", () => {
  it("an Upstream object is used as it is, a URL as its text, descriptor set bytes as they are, cors: false as off; the caller's objects are not filled in", async () => {
    const quiet = { warn: () => {}, info: () => {}, error: () => {}, debug: () => {} };
    const cluster = createCluster(defaultClusterOptions("127.0.0.1:1"), quiet);
    try {
      assert.equal(resolveOptions({ upstream: cluster }).upstream, cluster);
    } finally {
      await cluster.close();
    }
    assert.deepEqual(resolveOptions({ upstream: new URL("http://127.0.0.1:50051") }).upstream, { origin: "http://127.0.0.1:50051", authority: "127.0.0.1:50051" });
    const bytes = new Uint8Array([1, 2, 3]);
    assert.equal(resolveOptions({ upstream: "h:1", schema: { descriptorSets: [bytes] } }).schema!.descriptorSets[0], bytes);
    assert.equal(resolveOptions({ upstream: "h:1", cors: false }).cors, undefined);
    assert.equal(resolveOptions({ upstream: "h:1", cors: { allowedOrigins: [] } }).cors, undefined, "no origin is no CORS, as in a config file");
    const options = { upstream: "h:1", cors: { allowedOrigins: "*" as const }, schema: { reflection: {} } };
    resolveOptions(options);
    assert.deepEqual(options, { upstream: "h:1", cors: { allowedOrigins: "*" }, schema: { reflection: {} } });
  });

  it("Fastify's own register options (prefix) are not options of the bridge", async () => {
    const app = Fastify();
    await app.register(grpcBridge, { upstream: "127.0.0.1:1", prefix: "/rpc", logLevel: "warn" });
    await app.ready();
    await app.close();
  });
});

describe("the CLI hands its validated config to the plugin in one piece", () => {
  it("keys without a flag reach the plugin from a config file", async () => {
    const upstream = await startGrpcJsServer();
    const dir = mkdtempSync(join(tmpdir(), "bridge-cli-piece-"));
    const file = join(dir, "bridge.yaml");
    writeFileSync(file, `upstream: ${upstream.address}\nlisten: { port: 0 }\nlogLevel: warn\ncodecs: [proto]\nrequireConnectProtocolHeader: true\nmaxStreamsPerConnection: 7\n`);
    const p = runCli(["--config", file]);
    try {
      const url = await p.listening();
      const call = (headers: Record<string, string>) =>
        fetch(`${url}/bridge.test.v1.TestService/Unary`, { method: "POST", headers, body: new Uint8Array(echoRequest({ text: "x" })) });
      const withoutHeader = await call({ "content-type": "application/proto" });
      assert.equal(withoutHeader.status, 400, "requireConnectProtocolHeader applied");
      const json = await call({ "content-type": "application/json", "connect-protocol-version": "1" });
      assert.equal(json.status, 415, "codecs applied");
      assert.doesNotMatch(json.headers.get("accept-post") ?? "", /json/);
      const ok = await call({ "content-type": "application/proto", "connect-protocol-version": "1" });
      assert.equal(ok.status, 200);
    } finally {
      p.child.kill("SIGKILL");
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
      await upstream.close();
    }
  });

  it("createBridge takes a loaded config's plugin part as it is", async () => {
    const { config } = loadConfig({ upstream: "127.0.0.1:1", "cors-origin": ["https://app.test"] }, {});
    const { listen: _listen, tls: _tls, logLevel: _logLevel, workers: _workers, drainDelayMs: _drainDelayMs, ...options } = config;
    const app = createBridge(options);
    await app.ready();
    const preflight = await app.inject({ method: "OPTIONS", url: "/a.B/C", headers: { origin: "https://app.test", "access-control-request-method": "POST" } });
    assert.equal(preflight.headers["access-control-allow-origin"], "https://app.test");
    assert.equal(preflight.headers["access-control-max-age"], "7200");
    await app.close();
  });
});
