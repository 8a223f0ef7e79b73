/**
 * Per-upstream metrics from real peers: health-check results and endpoint
 * states from a grpc-js replica whose health service flips to NOT_SERVING
 * (and /readyz with it), GOAWAYs from a node:http2 server that sends one,
 * connect failures and retries against a port nothing listens on.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createBridge, type CreateBridgeOptions } from "../../src/index.js";
import { startReplica } from "../support/replicas.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function bridgeWith(options: CreateBridgeOptions) {
  const registry = new Registry();
  let listening!: (url: string) => void;
  const adminUrl = new Promise<string>((resolve) => (listening = resolve));
  const app = createBridge({ ...options, metrics: { registry, processMetrics: false }, admin: { port: 0, onListening: listening } });
  await app.listen({ port: 0, host: "127.0.0.1" });
  cleanups.push(() => app.close());
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { registry, baseUrl, admin: await adminUrl };
}

/** The value of one series in the registry's exposition (as Prometheus would read it), or undefined. */
async function sample(registry: Registry, series: string): Promise<number | undefined> {
  const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Re-reads until `accept` holds: health checks run on their own timer. */
async function until(read: () => Promise<number | undefined>, accept: (value: number | undefined) => boolean, what: string): Promise<number | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: last value ${value}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("upstream metrics", () => {
  it("counts health checks by result and endpoints by state; a NOT_SERVING replica makes /readyz fail", async () => {
    const replica = await startReplica("r1");
    cleanups.push(() => replica.close());
    const { registry, admin } = await bridgeWith({
      clusters: [
        {
          name: "checked",
          endpoints: [replica.address],
          healthCheck: { intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
        },
      ],
    });
    const at = `cluster="checked",endpoint="${replica.address}"`;
    await until(() => sample(registry, `grpc_bridge_upstream_health_checks_total{${at},result="pass"}`), (v) => v !== undefined && v >= 2, "two passing checks");
    assert.equal(await sample(registry, `grpc_bridge_upstream_endpoints{cluster="checked",state="usable"}`), 1);
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);

    replica.health.setStatus("", "NOT_SERVING");
    await until(() => sample(registry, `grpc_bridge_upstream_endpoints{cluster="checked",state="unhealthy"}`), (v) => v === 1, "the endpoint to turn unhealthy");
    assert.equal(await sample(registry, `grpc_bridge_upstream_endpoints{cluster="checked",state="usable"}`), 0);
    assert.ok((await sample(registry, `grpc_bridge_upstream_health_checks_total{${at},result="fail"}`))! >= 1);
    const readiness = await fetch(`${admin}/readyz`);
    assert.equal(readiness.status, 503);
    assert.match(await readiness.text(), /cluster "checked" has no usable endpoint: \S+ unhealthy \(health check: NOT_SERVING\)/);
  });

  it("counts GOAWAYs an endpoint sends, and its open connections", async () => {
    // A minimal gRPC server: answers every call with an empty message, then says GOAWAY.
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.alloc(5));
      // Graceful: this stream (the last one processed) completes.
      stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on("session", (session) => sessions.add(session));
    cleanups.push(async () => sessions.forEach((s) => s.destroy()));

    const { registry, baseUrl } = await bridgeWith({ clusters: [{ name: "goer", endpoints: [address] }] });
    const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const at = `cluster="goer",endpoint="${address}"`;
    assert.equal(await sample(registry, `grpc_bridge_upstream_goaways_total{${at}}`), 0);
    await client.unary({ text: "first" });
    await until(() => sample(registry, `grpc_bridge_upstream_goaways_total{${at}}`), (v) => v === 1, "the GOAWAY to be counted");
    // The retired connection is dropped once idle; the next call opens another, which gets its GOAWAY too.
    await until(() => sample(registry, `grpc_bridge_upstream_connections{${at}}`), (v) => v === 0, "the retired connection to close");
    await client.unary({ text: "second" });
    await until(() => sample(registry, `grpc_bridge_upstream_goaways_total{${at}}`), (v) => v === 2, "the second GOAWAY");
  });

  it("counts connect failures and retries against an endpoint nothing listens on", async () => {
    const { registry, baseUrl } = await bridgeWith({ clusters: [{ name: "nowhere", endpoints: ["127.0.0.1:1"] }] });
    const client = createClient(TestService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const error = await client.unary({ text: "x" }).then(
      () => assert.fail("expected unavailable"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.Unavailable);
    assert.ok((await sample(registry, `grpc_bridge_upstream_connect_failures_total{cluster="nowhere",endpoint="127.0.0.1:1"}`))! >= 1);
    assert.equal(await sample(registry, `grpc_bridge_upstream_endpoints{cluster="nowhere",state="backing_off"}`), 1);
    // The failed attempt never reached an application: retried once on the same (only) endpoint.
    assert.equal(await sample(registry, `grpc_bridge_upstream_retries_total{cluster="nowhere"}`), 1);
    assert.equal(await sample(registry, `grpc_bridge_upstream_retry_budget_refusals_total{cluster="nowhere"}`), 0);
  });
});
