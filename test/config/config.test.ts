/**
 * The config layer: validation messages (key path, value, expected),
 * precedence of file, environment and flags, defaults, and the routing
 * table's rules.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/validate.js";
import { resolveDeployment } from "../../src/config/deployment.js";
import { resolveOptions } from "../../src/options.js";
import { Router } from "../../src/routing/router.js";
import { grpcBridge } from "../../src/index.js";
import { runCli } from "../support/cli-process.js";

function withFile<T>(name: string, text: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "bridge-config-"));
  try {
    const path = join(dir, name);
    writeFileSync(path, text);
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail("no ConfigError");
}

describe("config validation", () => {
  const cases: [string, string, RegExp][] = [
    ["an unknown lbPolicy", "clusters: [{ name: a, endpoints: ['127.0.0.1:1'], lbPolicy: random }]", /^clusters\[0\]\.lbPolicy: got "random"; expected "round_robin" or "least_requests"$/],
    ["an endpoint without a port", "clusters: [{ name: a, endpoints: ['10.0.0.1'] }]", /^clusters\[0\]\.endpoints\[0\]: got "10\.0\.0\.1"; expected HOST:PORT/],
    ["a duration where ms are expected", "clusters: [{ name: a, endpoints: ['h:1'], healthCheck: { intervalMs: 5s } }]", /^clusters\[0\]\.healthCheck\.intervalMs: got "5s"; expected an integer$/],
    ["a misspelt key", "clusters: [{ name: a, endpoints: ['h:1'], lb_policy: round_robin }]", /^clusters\[0\]\.lb_policy: unknown key; expected one of: name, endpoints, .*lbPolicy/],
    ["a missing key", "clusters: [{ name: a }]", /^clusters\[0\]\.endpoints: missing; it is required$/],
    ["a port out of range", "upstream: h:1\nlisten: { port: 70000 }", /^listen\.port: got 70000; expected a number <= 65535$/],
    ["a route to a cluster that does not exist", "clusters: [{ name: a, endpoints: ['h:1'] }]\nroutes: [{ service: x.Y, cluster: b }]", /^routes\[0\]\.cluster: got "b"; expected the name of a cluster \(one of: a\)$/],
    ["a route with two matchers", "clusters: [{ name: a, endpoints: ['h:1'] }]\nroutes: [{ service: x.Y, prefix: /x., cluster: a }]", /^routes\[0\]: got prefix and service; expected at most one of prefix, path, service/],
    ["two clusters with one name", "clusters: [{ name: a, endpoints: ['h:1'] }, { name: a, endpoints: ['h:2'] }]", /^clusters\[1\]\.name: got "a"; expected a name not used already \(clusters\[0\]\)$/],
    ["several clusters and no routes", "clusters: [{ name: a, endpoints: ['h:1'] }, { name: b, endpoints: ['h:2'] }]", /^routes: got nothing; expected routes when there are several clusters \(a, b\)$/],
    ["upstream and clusters together", "upstream: h:1\nclusters: [{ name: a, endpoints: ['h:1'] }]", /^upstream: got "h:1" as well as clusters\/routes; expected one of them/],
    ["an upstream CA file that cannot be read", "clusters: [{ name: a, endpoints: ['h:1'], tls: { caFile: /nonexistent/ca.pem } }]", /^clusters\[0\]\.tls\.caFile: got "\/nonexistent\/ca\.pem"; expected a readable PEM file \(ENOENT/],
    ["a client certificate without its key", "clusters: [{ name: a, endpoints: ['h:1'], tls: { cert: PEM } }]", /^clusters\[0\]\.tls: got a client certificate without a key; expected both \(mTLS\) or neither$/],
  ];
  for (const [what, yaml, expected] of cases) {
    it(`names the key, the value and what was expected: ${what}`, () => {
      const issues = withFile("bridge.yaml", yaml, (file) => issuesOf(() => loadConfig({ config: file }, {})));
      assert.ok(issues.some((line) => expected.test(line)), `${expected} in:\n${issues.join("\n")}`);
    });
  }

  it("reports every problem at once, and which variable or flag set a bad value", () => {
    const issues = withFile("bridge.json", JSON.stringify({ upstream: "h:1", logLevel: "loud" }), (file) =>
      issuesOf(() => loadConfig({ config: file, port: "http" }, { CONNECT_GRPC_BRIDGE_MAX_REQUEST_BYTES: "-5" })),
    );
    assert.deepEqual(issues.sort(), [
      'listen.port: got "http"; expected an integer (set by --port)',
      'logLevel: got "loud"; expected "fatal", "error", "warn", "info", "debug", "trace", "silent"',
      'maxRequestBytes: got "-5"; expected an integer (set by CONNECT_GRPC_BRIDGE_MAX_REQUEST_BYTES)',
    ]);
  });

  it("a file that is not YAML or not a mapping is named", () => {
    const issues = withFile("bad.yaml", "clusters: [unclosed", (file) => issuesOf(() => loadConfig({ config: file }, {})));
    assert.match(issues[0]!, /bad\.yaml: not valid YAML\/JSON/);
    const list = withFile("list.yaml", "- a\n- b\n", (file) => issuesOf(() => loadConfig({ config: file }, {})));
    assert.match(list[0]!, /list\.yaml: got \["a","b"\]; expected a mapping of keys at the top level/);
  });

  it("the CLI exits with 2 and prints the problem on stderr", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-config-cli-"));
    try {
      writeFileSync(join(dir, "bridge.yaml"), "clusters:\n  - name: users\n    endpoints: [users:50051]\n    keepaliveIntervalMs: -1\n");
      const p = runCli(["--config", join(dir, "bridge.yaml")]);
      assert.equal(await p.exited, 2);
      assert.match(p.err(), /clusters\[0\]\.keepaliveIntervalMs: got -1; expected a number >= 0/);
      assert.equal(p.out(), "");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("plugin options are checked against the same schema", async () => {
    const app = Fastify();
    app.register(grpcBridge, { clusters: [{ name: "a", endpoints: ["127.0.0.1:1"] }], routes: [{ prefix: "/x.", cluster: "nope" }] });
    await assert.rejects(async () => { await app.ready(); }, /options\.routes\[0\]\.cluster: got "nope"; expected the name of a cluster \(one of: a\)/);
    await app.close();
  });
});

describe("config sources and defaults", () => {
  it("--print-config: flags beat environment variables, which beat the file; defaults fill the rest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-precedence-"));
    try {
      const file = join(dir, "bridge.yaml");
      writeFileSync(
        file,
        "listen: { host: 0.0.0.0, port: 1111 }\nlogLevel: debug\nmaxRequestBytes: 1000\ncors: { allowedOrigins: ['https://file.test'] }\n" +
          "clusters: [{ name: users, endpoints: ['users.internal:50051', 'users.internal:50052'] }]\n",
      );
      const p = runCli(["--config", file, "--print-config", "--port", "3333"], {
        CONNECT_GRPC_BRIDGE_PORT: "2222",
        CONNECT_GRPC_BRIDGE_LOG_LEVEL: "error",
        CONNECT_GRPC_BRIDGE_MAX_RESPONSE_BYTES: "2000",
        CONNECT_GRPC_BRIDGE_CORS_ALLOW_HEADER: "Authorization, X-Trace",
      });
      assert.equal(await p.exited, 0, p.err());
      const printed = parseYaml(p.out());
      assert.deepEqual(printed.listen, { host: "0.0.0.0", port: 3333 }); // flag over env over file
      assert.equal(printed.logLevel, "error"); // env over file
      assert.equal(printed.maxRequestBytes, 1000); // file over default
      assert.equal(printed.maxResponseBytes, 2000); // env
      assert.equal(printed.unaryBodyTimeoutMs, 30000); // default
      assert.deepEqual(printed.cors, {
        allowedOrigins: ["https://file.test"],
        allowedHeaders: ["Authorization", "X-Trace"],
        exposedHeaders: [],
        maxAgeSeconds: 7200,
        credentials: false,
      });
      assert.deepEqual(printed.clusters[0], {
        name: "users",
        endpoints: ["users.internal:50051", "users.internal:50052"],
        authority: "users.internal:50051",
        dnsRefreshMs: 30000,
        lbPolicy: "round_robin",
        maxStreamsPerConnection: 100,
        keepaliveIntervalMs: 30000,
        keepaliveTimeoutMs: 10000,
        maxConnectionAgeMs: 0,
        connectTimeoutMs: 5000,
        reconnectBaseMs: 1000,
        reconnectMaxMs: 30000,
        outlierConsecutiveFailures: 5,
        outlierEjectionMs: 30000,
        retry: { maxAttempts: 3, budgetPercent: 20, minRetriesPerSecond: 10 },
      });
      // One cluster and no routes: everything goes there, and the output says so.
      assert.deepEqual(printed.routes, [{ cluster: "users" }]);
      // What --print-config prints is a config the bridge accepts as it is.
      writeFileSync(join(dir, "printed.yaml"), p.out());
      const again = loadConfig({ config: join(dir, "printed.yaml") }, {});
      assert.deepEqual(JSON.parse(JSON.stringify(again.config)), JSON.parse(JSON.stringify(printed)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("examples/bridge.yaml is a valid config", () => {
    const { deployment } = loadConfig({ config: fileURLToPath(new URL("../../../examples/bridge.yaml", import.meta.url)) }, {});
    assert.deepEqual(deployment!.clusters.map((c) => [c.name, c.endpoints.length]), [["users", 2], ["orders", 2]]);
  });

  it("the schema's defaults are the plugin's defaults", () => {
    const { config } = loadConfig({ upstream: "127.0.0.1:1" }, {});
    const plugin = resolveOptions({ upstream: "127.0.0.1:1" });
    for (const key of ["maxRequestBytes", "maxResponseBytes", "maxHeaderEntries", "unaryBodyTimeoutMs", "codecs", "acceptCompression", "upstreamCompression", "compressMinBytes", "requireConnectProtocolHeader"] as const) {
      assert.deepEqual(config[key], plugin[key], key);
    }
  });

  it("cluster defaults are the ones ClusterOptions documents; TLS and health checks filled in when present", () => {
    const { clusters } = resolveDeployment(
      [{ name: "a", endpoints: ["http://10.0.0.1:50051"], tls: { serverName: "a.internal" }, healthCheck: {} }],
      undefined,
    );
    assert.deepEqual(clusters[0]!.tls, { ca: undefined, serverName: "a.internal", cert: undefined, key: undefined, insecureSkipVerify: false });
    assert.deepEqual(clusters[0]!.healthCheck, { service: "", intervalMs: 5000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 2 });
    assert.deepEqual(clusters[0]!.endpoints, ["10.0.0.1:50051"]);
    assert.equal(clusters[0]!.authority, "10.0.0.1:50051");
  });

  it("upstream TLS files are read into ClusterOptions (PEM text), except when only printing", () => {
    withFile("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", (caFile) => {
      const cluster = { name: "a", endpoints: ["h:1"], tls: { caFile, serverName: "a.internal" } };
      const [read] = resolveDeployment([cluster], undefined).clusters;
      assert.equal(read!.tls!.ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
      const [unread] = resolveDeployment([{ ...cluster, tls: { ...cluster.tls, caFile: "/elsewhere/ca.pem" } }], undefined, "", false).clusters;
      assert.equal(unread!.tls!.ca, undefined);
    });
  });

  it("the zero-config --upstream form still needs nothing else, and says what is missing without it", () => {
    assert.equal(loadConfig({ upstream: "localhost:50051" }, {}).deployment, undefined);
    assert.match(issuesOf(() => loadConfig({}, {}))[0]!, /--upstream is required/);
    assert.match(issuesOf(() => loadConfig({ upstream: "https://x:1" }, {}))[0]!, /for TLS define a cluster with "tls" in a config file/);
  });
});

describe("routing table", () => {
  const targets = new Map([["a", "A"], ["b", "B"], ["c", "C"]]);

  it("first match wins; service, method path and prefix matchers; deny; no match", () => {
    const router = new Router(
      [
        { prefix: "/grpc.reflection.", deny: true },
        { path: "/pkg.Users/Delete", deny: true },
        { path: "/pkg.Users/Get", cluster: "b" },
        { service: "pkg.Users", cluster: "a" },
        { prefix: "/pkg.", cluster: "c" },
      ],
      targets,
    );
    assert.equal(router.route("/pkg.Users/Get", undefined), "B");
    assert.equal(router.route("/pkg.Users/List", undefined), "A");
    assert.equal(router.route("/pkg.Users/Delete", undefined), undefined);
    assert.equal(router.route("/pkg.UsersAdmin/List", undefined), "C"); // service matches whole names only
    assert.equal(router.route("/pkg.Orders/Get", "any"), "C");
    assert.equal(router.route("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", undefined), undefined);
    assert.equal(router.route("/other.Service/M", undefined), undefined);
    // Cached answers are the same answers.
    assert.equal(router.route("/pkg.Users/Get", undefined), "B");
    assert.equal(router.route("/pkg.Users/Delete", undefined), undefined);
  });

  it("authority: exact (any port unless one is named), wildcards, case-insensitive; a default route catches the rest", () => {
    const router = new Router(
      [
        { service: "s.S", authority: "api.example.com", cluster: "a" },
        { service: "s.S", authority: ["*.canary.example.com", "internal:8443"], cluster: "b" },
        { cluster: "c" },
      ],
      targets,
    );
    assert.equal(router.route("/s.S/M", "api.example.com"), "A");
    assert.equal(router.route("/s.S/M", "API.Example.com:8080"), "A");
    assert.equal(router.route("/s.S/M", "x.canary.example.com"), "B");
    assert.equal(router.route("/s.S/M", "canary.example.com"), "C");
    assert.equal(router.route("/s.S/M", "internal:8443"), "B");
    assert.equal(router.route("/s.S/M", "internal:9000"), "C");
    assert.equal(router.route("/s.S/M", undefined), "C");
    assert.equal(router.route("/t.T/M", "api.example.com"), "C");
  });

  it("stays correct past its cache bound (paths come from clients)", () => {
    const router = new Router([{ service: "s.S", cluster: "a" }], targets);
    for (let i = 0; i < 10_000; i++) {
      assert.equal(router.route(`/s.S/M${i}`, undefined), "A");
      assert.equal(router.route(`/x.X/M${i}`, undefined), undefined);
    }
  });
});
