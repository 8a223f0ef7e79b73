/**
 * What the metrics layer counts, read from the registry the host injected:
 * bounded method labels (random unknown paths are one label value; past
 * maxMethods, "other"), message and byte counts of streams, in-flight,
 * refusals by reason, and the registry's own rules (one bridge per registry).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Registry, collectDefaultMetrics } from "prom-client";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { EchoRequestSchema, TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, loadConfig } from "../../src/index.js";
import { resolveOptions } from "../../src/options.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge } from "../support/bridge.js";
import { send } from "../support/raw-http.js";

type Labels = Record<string, string | number>;

async function values(registry: Registry, name: string): Promise<{ labels: Labels; value: number }[]> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric !== undefined, `${name} is registered`);
  return (await metric.get()).values.map(({ labels, value }) => ({ labels: labels as Labels, value }));
}

async function valueOf(registry: Registry, name: string, match: Labels): Promise<number | undefined> {
  const found = (await values(registry, name)).filter((v) => Object.entries(match).every(([k, want]) => v.labels[k] === want));
  return found.length === 0 ? undefined : found.reduce((sum, v) => sum + v.value, 0);
}

describe("metrics labels and counts", () => {
  let upstream: RunningServer;
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream.close();
  });

  it("1000 random unknown paths make one service/method label value, not 1000", async () => {
    const registry = new Registry();
    const bridge = await startBridge(upstream.address, { metrics: { registry, processMetrics: false } });
    try {
      const paths = Array.from({ length: 1000 }, (_, i) => `/random${Math.random().toString(36).slice(2)}.Svc${i}/M${i}`);
      // 50 at a time over keep-alive connections.
      for (let i = 0; i < paths.length; i += 50) {
        const answers = await Promise.all(
          paths.slice(i, i + 50).map((path) => send(`${bridge.baseUrl}${path}`, { headers: { "content-type": "application/proto" }, body: new Uint8Array() })),
        );
        for (const answer of answers) assert.equal(answer.status, 404, "grpc-js: unimplemented, which Connect answers 404");
      }
      const handled = await values(registry, "grpc_bridge_rpc_handled_total");
      const pairs = new Set(handled.map((v) => `${v.labels.service}/${v.labels.method}`));
      assert.deepEqual([...pairs], ["unknown/unknown"]);
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_handled_total", { code: "unimplemented" }), 1000);
      // The duration histogram is labelled alike (one series per bucket, not per path).
      const durations = await values(registry, "grpc_bridge_rpc_duration_seconds");
      assert.deepEqual(new Set(durations.map((v) => `${v.labels.service}/${v.labels.method}`)), new Set(["unknown/unknown"]));
      assert.equal((await registry.metrics()).includes("random"), false, "no raw path in the exposition");

      // A real method is learnt from the upstream's answer: an error of its own counts too.
      const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
      await client.unary({ text: "real", fail: { code: Code.PermissionDenied, message: "no" } }).catch((e: unknown) => {
        assert.equal(ConnectError.from(e).code, Code.PermissionDenied);
      });
      assert.equal(
        await valueOf(registry, "grpc_bridge_rpc_handled_total", { service: "bridge.test.v1.TestService", method: "Unary", code: "permission_denied" }),
        1,
      );
    } finally {
      await bridge.close();
    }
  });

  it("a call the upstream never answered (no endpoint) does not make its path a label", async () => {
    const registry = new Registry();
    const bridge = await startBridge("127.0.0.1:1", { metrics: { registry, processMetrics: false } });
    try {
      const client = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
      const error = await client.unary({ text: "x" }).then(
        () => assert.fail("expected unavailable"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error.code, Code.Unavailable);
      assert.deepEqual(
        (await values(registry, "grpc_bridge_rpc_handled_total")).map((v) => v.labels),
        [{ protocol: "connect", service: "unknown", method: "unknown", code: "unavailable" }],
      );
    } finally {
      await bridge.close();
    }
  });

  it("past maxMethods, further methods are labelled other", async () => {
    const registry = new Registry();
    const bridge = await startBridge(upstream.address, { metrics: { registry, processMetrics: false, maxMethods: 2 } });
    try {
      const client = createClient(TestService, createGrpcTransport({ baseUrl: bridge.baseUrl }));
      await client.unary({ text: "a" });
      for await (const _ of client.serverStream({ text: "b", responseCount: 1 })) void _;
      await client.clientStream((async function* () { yield { text: "c" }; })());
      for await (const _ of client.bidiStream((async function* () { yield { text: "d" }; })())) void _;
      const pairs = (await values(registry, "grpc_bridge_rpc_handled_total")).map((v) => `${v.labels.service}/${v.labels.method} ${v.value}`).sort();
      assert.deepEqual(pairs, ["bridge.test.v1.TestService/ServerStream 1", "bridge.test.v1.TestService/Unary 1", "other/other 2"]);
    } finally {
      await bridge.close();
    }
  });

  it("counts request and response messages and bytes of streams, and calls in flight", async () => {
    const registry = new Registry();
    const bridge = await startBridge(upstream.address, { metrics: { registry, processMetrics: false } });
    try {
      const client = createClient(TestService, createGrpcTransport({ baseUrl: bridge.baseUrl }));
      // Learn the paths first: in-flight gauges are labelled by what is known at the start.
      await client.clientStream((async function* () { yield { text: "warm" }; })());
      const requests = [{ text: "one" }, { text: "two", payload: new Uint8Array(300) }, { text: "three" }];
      const frameBytes = requests.reduce((sum, r) => sum + 5 + toBinary(EchoRequestSchema, create(EchoRequestSchema, r)).byteLength, 0);
      const warmBytes = 5 + toBinary(EchoRequestSchema, create(EchoRequestSchema, { text: "warm" })).byteLength;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const labels = { protocol: "grpc", service: "bridge.test.v1.TestService", method: "ClientStream" };
      const call = client.clientStream(
        (async function* () {
          yield requests[0]!;
          yield requests[1]!;
          await held;
          yield requests[2]!;
        })(),
      );
      // The call is open until the generator is released: wait until the gauge shows it.
      while ((await valueOf(registry, "grpc_bridge_rpc_in_flight", labels)) !== 1) await new Promise((r) => setImmediate(r));
      release();
      await call;
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_in_flight", labels), 0);
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_request_messages_total", labels), 4);
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_request_bytes_total", labels), frameBytes + warmBytes);
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_response_messages_total", labels), 2);

      const streamLabels = { ...labels, method: "ServerStream" };
      let received = 0;
      for await (const _ of client.serverStream({ text: "s", responseCount: 3, responseSize: 100 })) received++;
      assert.equal(received, 3);
      assert.equal(await valueOf(registry, "grpc_bridge_rpc_response_messages_total", streamLabels), 3);
      const responseBytes = (await valueOf(registry, "grpc_bridge_rpc_response_bytes_total", streamLabels))!;
      assert.ok(responseBytes > 3 * (5 + 100) && responseBytes < 3 * (5 + 100 + 20), `3 frames of ~100-byte payloads: ${responseBytes}`);
    } finally {
      await bridge.close();
    }
  });

  it("counts refusals by reason and protocol, without starting calls", async () => {
    const registry = new Registry();
    const app = createBridge({
      clusters: [{ name: "only", endpoints: [upstream.address] }],
      routes: [{ service: "bridge.test.v1.TestService", cluster: "only" }, { service: "secret.Admin", deny: true }],
      metrics: { registry, processMetrics: false },
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
      const proto = { "content-type": "application/proto" };
      assert.equal((await send(`${base}/not-a-procedure`, { headers: proto, body: new Uint8Array() })).status, 404);
      assert.equal((await send(`${base}/other.Service/Method`, { headers: proto, body: new Uint8Array() })).status, 404);
      assert.equal((await send(`${base}/secret.Admin/Drop`, { headers: proto, body: new Uint8Array() })).status, 404);
      assert.equal((await send(`${base}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, { headers: { "content-type": "application/grpc-web" }, body: new Uint8Array() })).status, 200);
      assert.equal((await send(`${base}/bridge.test.v1.TestService/Unary`, { headers: { "content-type": "image/jpeg" }, body: new Uint8Array() })).status, 415);
      assert.equal((await send(`${base}/bridge.test.v1.TestService/Unary`, { method: "PUT", headers: proto, body: new Uint8Array() })).status, 405);
      const refusals = (await values(registry, "grpc_bridge_refusals_total")).map((v) => `${v.labels.reason} ${v.labels.protocol} ${v.value}`).sort();
      assert.deepEqual(refusals, ["denied connect 1", "protocol connect 1", "protocol none 1", "reflection grpc-web 1", "unknown_path connect 1", "unrouted connect 1"]);
      assert.deepEqual(await values(registry, "grpc_bridge_rpc_handled_total"), [], "no call was started");
    } finally {
      await app.close();
    }
  });

  it("one bridge per registry: a second one says so; metrics off registers nothing", async () => {
    const registry = new Registry();
    const first = createBridge({ upstream: upstream.address, metrics: { registry } });
    await first.ready();
    assert.ok(registry.getSingleMetric("process_cpu_user_seconds_total"), "process metrics on by default");
    const second = createBridge({ upstream: upstream.address, metrics: { registry } });
    await assert.rejects(async () => {
      await second.ready();
    }, /metric grpc_bridge_rpc_handled_total is already registered .* one bridge per registry/);
    await second.close();
    await first.close();

    // A host registry with process metrics of its own: the bridge adds its metrics, not a second set.
    const host = new Registry();
    collectDefaultMetrics({ register: host });
    const embedded = createBridge({ upstream: upstream.address, metrics: { registry: host } });
    await embedded.ready();
    assert.ok(host.getSingleMetric("grpc_bridge_rpc_handled_total"));
    await embedded.close();

    const unused = new Registry();
    const off = createBridge({ upstream: upstream.address, metrics: { registry: unused, enabled: false } });
    await off.ready();
    assert.deepEqual(unused.getMetricsAsArray(), []);
    await off.close();
  });
});

describe("metrics and admin configuration", () => {
  it("flags and environment reach metrics.enabled and admin.{port,host}; the defaults are the plugin's", () => {
    const fromFlags = loadConfig({ upstream: "127.0.0.1:1", metrics: true, "admin-port": "9901" }, {});
    assert.equal(fromFlags.config.metrics.enabled, true);
    assert.deepEqual(fromFlags.config.admin, { port: 9901, host: "127.0.0.1" });
    const fromEnv = loadConfig(
      { upstream: "127.0.0.1:1" },
      { CONNECT_GRPC_BRIDGE_METRICS: "true", CONNECT_GRPC_BRIDGE_ADMIN_PORT: "9902", CONNECT_GRPC_BRIDGE_ADMIN_HOST: "0.0.0.0" },
    );
    assert.equal(fromEnv.config.metrics.enabled, true);
    assert.deepEqual(fromEnv.config.admin, { port: 9902, host: "0.0.0.0" });
    const plain = loadConfig({ upstream: "127.0.0.1:1" }, {});
    assert.deepEqual(plain.config.metrics, { enabled: false, processMetrics: true, maxMethods: 500 });
    assert.equal(plain.config.admin, undefined, "no admin listener unless asked");
    const plugin = resolveOptions({ upstream: "127.0.0.1:1", metrics: { enabled: true } });
    assert.equal(plugin.metrics!.processMetrics, plain.config.metrics.processMetrics);
    assert.equal(plugin.metrics!.maxMethods, plain.config.metrics.maxMethods);
    assert.equal(resolveOptions({ upstream: "127.0.0.1:1" }).metrics, undefined);
    assert.ok(resolveOptions({ upstream: "127.0.0.1:1", metrics: { registry: new Registry() } }).metrics, "a registry turns them on");
  });

  it("a bad admin or metrics option is named", () => {
    assert.throws(() => loadConfig({ upstream: "127.0.0.1:1", "admin-host": "0.0.0.0" }, {}), /admin.*port/);
    assert.throws(() => loadConfig({ upstream: "127.0.0.1:1", "admin-port": "70000" }, {}), /admin\.port.*--admin-port/);
    assert.throws(() => resolveOptions({ upstream: "127.0.0.1:1", metrics: { maxMethods: 0 } }), /metrics\.maxMethods/);
  });
});
