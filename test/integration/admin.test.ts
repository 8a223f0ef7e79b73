/**
 * The admin listener: its own port, off the data port. Liveness, readiness
 * (listening, draining, a cluster without a usable endpoint), the redacted
 * config, the clusters' state, extra routes; the data port answers these
 * paths as an RPC 404 in the client's protocol, never as admin endpoints.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, type CreateBridgeOptions } from "../../src/index.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { redact } from "../../src/admin/redact.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { h2Exchange, send } from "../support/raw-http.js";
import { runCli } from "../support/cli-process.js";

/** A bridge with an admin listener; resolves once both listen. */
async function startWithAdmin(options: CreateBridgeOptions, listen = true) {
  let listening!: (url: string) => void;
  const adminUrl = new Promise<string>((resolve) => (listening = resolve));
  const app = createBridge({ ...options, admin: { port: 0, ...options.admin, onListening: listening } });
  if (listen) await app.listen({ port: 0, host: "127.0.0.1" });
  else await app.ready();
  const admin = await adminUrl;
  const address = () => `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { app, admin, address, close: () => app.close() };
}

async function get(url: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("admin listener", () => {
  let upstream: RunningServer;
  before(async () => {
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream.close();
  });

  it("/healthz answers 200 once started; /readyz only while the data port listens, and 503 with the reason once draining starts", async () => {
    const lifecycle = new Lifecycle();
    const bridge = await startWithAdmin({ upstream: upstream.address, admin: { port: 0 }, lifecycle }, false);
    try {
      assert.equal(new URL(bridge.admin).hostname, "127.0.0.1", "loopback by default");
      const health = await get(`${bridge.admin}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(health.body, "ok\n");
      const early = await get(`${bridge.admin}/readyz`);
      assert.equal(early.status, 503, "ready() alone: the data port does not listen yet");
      assert.match(early.body, /not listening/);

      await bridge.app.listen({ port: 0, host: "127.0.0.1" });
      const ready = await get(`${bridge.admin}/readyz`);
      assert.equal(ready.status, 200, ready.body);
      assert.equal(ready.body, "ready\n");

      lifecycle.startDraining("SIGTERM");
      const draining = await get(`${bridge.admin}/readyz`);
      assert.equal(draining.status, 503);
      assert.equal(draining.body, "not ready: draining (SIGTERM)\n");
      assert.equal((await get(`${bridge.admin}/healthz`)).status, 200, "still alive while draining");
    } finally {
      await bridge.close();
    }
    await assert.rejects(fetch(`${bridge.admin}/healthz`), "closed with the app");
  });

  it("/readyz is 503 naming the cluster that has no usable endpoint", async () => {
    const down = await closedPort();
    const bridge = await startWithAdmin({
      clusters: [
        { name: "up", endpoints: [upstream.address] },
        // A long backoff: the endpoint stays out after its first failed connection.
        { name: "down", endpoints: [`127.0.0.1:${down}`], reconnectBaseMs: 60_000, reconnectMaxMs: 60_000 },
      ],
      routes: [{ path: "/bridge.test.v1.TestService/Unary", cluster: "down" }, { cluster: "up" }],
    });
    try {
      assert.equal((await get(`${bridge.admin}/readyz`)).status, 200, "no connection failed yet");
      const client = createClient(TestService, createConnectTransport({ baseUrl: `http://${bridge.address()}`, httpVersion: "1.1" }));
      const error = await client.unary({ text: "x" }).then(
        () => assert.fail("expected unavailable"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error.code, Code.Unavailable);
      const readiness = await get(`${bridge.admin}/readyz`);
      assert.equal(readiness.status, 503);
      assert.match(readiness.body, new RegExp(`^not ready: cluster "down" has no usable endpoint: 127\\.0\\.0\\.1:${down} backing_off \\(connect ECONNREFUSED`));
      assert.doesNotMatch(readiness.body, /"up"/);
    } finally {
      await bridge.close();
    }
  });

  it("/clusters lists each cluster's endpoints with state, connections and streams", async () => {
    const bridge = await startWithAdmin({ clusters: [{ name: "main", endpoints: [upstream.address] }] });
    try {
      const client = createClient(TestService, createConnectTransport({ baseUrl: `http://${bridge.address()}`, httpVersion: "1.1" }));
      await client.unary({ text: "warm" });
      // The upstream stream closes just after the response went out: wait for its close to be counted.
      let answer = await get(`${bridge.admin}/clusters`);
      for (let tries = 0; JSON.parse(answer.body).clusters[0].endpoints[0].streams !== 0 && tries < 200; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        answer = await get(`${bridge.admin}/clusters`);
      }
      assert.equal(answer.status, 200);
      assert.equal(answer.type, "application/json");
      assert.deepEqual(JSON.parse(answer.body), {
        clusters: [
          {
            name: "main",
            endpoints: [
              {
                address: upstream.address,
                state: "usable",
                connections: 1,
                streams: 0,
                connectFailures: 0,
                goaways: 0,
                healthChecksPassed: 0,
                healthChecksFailed: 0,
              },
            ],
            retries: 0,
            retryBudgetRefusals: 0,
          },
        ],
      });
    } finally {
      await bridge.close();
    }
  });

  it("/config shows the effective options with inline TLS material redacted", async () => {
    const pem = (label: string) => `-----BEGIN ${label}-----\nTOPSECRET${label.length}\n-----END ${label}-----\n`;
    const bridge = await startWithAdmin({
      clusters: [
        {
          name: "secure",
          endpoints: ["127.0.0.1:1"],
          tls: { ca: pem("CERTIFICATE"), cert: pem("CERTIFICATE"), key: pem("PRIVATE KEY"), serverName: "api.internal" },
        },
      ],
    });
    try {
      const answer = await get(`${bridge.admin}/config`);
      assert.equal(answer.status, 200);
      assert.doesNotMatch(answer.body, /TOPSECRET|BEGIN/);
      const config = JSON.parse(answer.body);
      assert.deepEqual(config.clusters[0].tls, {
        ca: "[redacted]",
        cert: "[redacted]",
        key: "[redacted]",
        serverName: "api.internal",
        insecureSkipVerify: false,
      });
      assert.equal(config.maxRequestBytes, 4 * 1024 * 1024, "defaults applied");
      assert.deepEqual(config.admin, { port: 0, host: "127.0.0.1" });
    } finally {
      await bridge.close();
    }
  });

  it("redaction keeps file paths, shows bytes by size and drops what is code", () => {
    assert.deepEqual(
      redact({
        tls: { certFile: "/etc/bridge/cert.pem", keyFile: "/etc/bridge/key.pem", key: Buffer.from("k"), cert: "" },
        schema: { descriptorSets: [new Uint8Array(12), "api.binpb"] },
        headers: { authorization: "Bearer abc", password: "p", apiToken: "t" },
        registry: new Registry(),
        onListening: () => {},
      }),
      {
        tls: { certFile: "/etc/bridge/cert.pem", keyFile: "/etc/bridge/key.pem", key: "[redacted]", cert: "" },
        schema: { descriptorSets: ["<12 bytes>", "api.binpb"] },
        headers: { authorization: "[redacted]", password: "[redacted]", apiToken: "[redacted]" },
        registry: "[Registry]",
      },
    );
  });

  it("/metrics says metrics are off when they are; other paths are 404 and other verbs 405", async () => {
    const bridge = await startWithAdmin({ upstream: upstream.address });
    try {
      const metrics = await get(`${bridge.admin}/metrics`);
      assert.equal(metrics.status, 404);
      assert.match(metrics.body, /metrics are off/);
      const missing = await get(`${bridge.admin}/nope`);
      assert.equal(missing.status, 404);
      assert.match(missing.body, /\/healthz, \/readyz, \/metrics, \/config, \/clusters/);
      const post = await fetch(`${bridge.admin}/healthz`, { method: "POST" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
    } finally {
      await bridge.close();
    }
  });

  it("serves extraRoutes another part of the bridge mounts (e.g. an OpenAPI document); built-in paths cannot be replaced", async () => {
    const extraRoutes = new Map([["/openapi.json", () => ({ contentType: "application/json", body: '{"openapi":"3.1.0"}' })]]);
    const bridge = await startWithAdmin({ upstream: upstream.address, admin: { port: 0, extraRoutes } });
    try {
      const doc = await get(`${bridge.admin}/openapi.json`);
      assert.equal(doc.status, 200);
      assert.equal(doc.type, "application/json");
      assert.equal(doc.body, '{"openapi":"3.1.0"}');
    } finally {
      await bridge.close();
    }
    const clash = createBridge({
      upstream: upstream.address,
      admin: { port: 0, extraRoutes: new Map([["/metrics", () => ({ contentType: "text/plain", body: "" })]]) },
    });
    await assert.rejects(async () => {
      await clash.ready();
    }, /admin route \/metrics is built in/);
    await clash.close();
  });

  it("the data port answers admin paths as an RPC 404 in the client's protocol, even with the admin listener on", async () => {
    const bridge = await startWithAdmin({ upstream: upstream.address, metrics: { enabled: true } });
    try {
      const base = `http://${bridge.address()}`;
      for (const path of ["/healthz", "/readyz", "/metrics", "/config", "/clusters"]) {
        const connectGet = await send(`${base}${path}`, { method: "GET" });
        assert.equal(connectGet.status, 404, path);
        assert.equal(JSON.parse(connectGet.body.toString()).code, "unimplemented");
        const grpcWeb = await send(`${base}${path}`, { headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array(5) });
        assert.equal(grpcWeb.status, 200, path);
        assert.equal(grpcWeb.headers["grpc-status"], String(Code.Unimplemented));
        const grpc = await h2Exchange(
          bridge.address(),
          { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" },
          Buffer.alloc(5),
        );
        assert.equal(grpc.status, 200);
        assert.equal(grpc.headers["grpc-status"], String(Code.Unimplemented));
      }
    } finally {
      await bridge.close();
    }
  });

  it("the CLI serves the admin endpoints on --admin-port, with the whole process config at /config", async () => {
    const cli = runCli(["--upstream", upstream.address, "--port", "0", "--metrics", "--admin-port", "0", "--log-level", "silent"]);
    try {
      await cli.printed(/admin endpoints at http:\/\/\S+/);
      const admin = /admin endpoints at (http:\/\/\S+)/.exec(cli.out())![1]!;
      const data = await cli.listening();
      assert.notEqual(new URL(admin).port, new URL(data).port);
      assert.equal((await get(`${admin}/healthz`)).status, 200);
      assert.equal((await get(`${admin}/readyz`)).status, 200);
      const config = JSON.parse((await get(`${admin}/config`)).body);
      assert.equal(config.upstream, upstream.address);
      assert.deepEqual(config.listen, { host: "127.0.0.1", port: 0 });
      assert.equal(config.metrics.enabled, true);
      const client = createClient(TestService, createConnectTransport({ baseUrl: data, httpVersion: "1.1" }));
      await client.unary({ text: "cli" });
      const metrics = await get(`${admin}/metrics`);
      assert.match(metrics.body, /^grpc_bridge_rpc_handled_total\{protocol="connect",service="bridge\.test\.v1\.TestService",method="Unary",code="ok"\} 1$/m);
      assert.equal((await get(`${data}/metrics`)).status, 404, "not on the data port");
    } finally {
      cli.child.kill("SIGTERM");
      assert.equal(await cli.exited, 0);
    }
  });
});

describe("admin listener start-up", () => {
  it("a port in use fails ready() naming the admin listener and its address", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as AddressInfo).port;
    const app = createBridge({ upstream: "127.0.0.1:1", admin: { port } });
    try {
      await assert.rejects(async () => {
        await app.ready();
      }, new RegExp(`admin listener cannot listen on 127\\.0\\.0\\.1:${port} \\(admin\\.port, --admin-port\\): listen EADDRINUSE`));
    } finally {
      await app.close();
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
