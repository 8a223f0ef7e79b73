/**
 * A cluster of real @grpc/grpc-js replicas behind the bridge, called by
 * @connectrpc/connect-node's Connect transport: balancing, a replica dying,
 * health checks taking replicas out and back, DNS re-resolution, and the
 * fast `unavailable` when nothing is left.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createCluster, type Cluster } from "../../src/upstream/cluster.js";
import type { ClusterOptions } from "../../src/upstream/cluster-options.js";
import {
  clusterOptions,
  recordingLog,
  startClusterBridge,
  startReplica,
  until,
  type Replica,
} from "../support/replicas.js";
import type { RunningBridge } from "../support/bridge.js";
import { startGrpcJsServer } from "../support/grpc-js-server.js";

type TestClient = Client<typeof TestService>;

/** A port nothing listens on (bound, then closed). */
async function deadAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

const cleanups: (() => Promise<void>)[] = [];
/** Runs after each describe: a file-level after() only runs once the event loop is idle. */
async function cleanUp(): Promise<void> {
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) await cleanup();
}

async function replicas(count: number, prefix = "r"): Promise<Replica[]> {
  const started = await Promise.all(Array.from({ length: count }, (_, i) => startReplica(`${prefix}${i}`)));
  for (const replica of started) cleanups.push(() => replica.close());
  return started;
}

async function bridgeFor(options: ClusterOptions, hooks: Parameters<typeof createCluster>[2] = {}) {
  const { log, lines } = recordingLog();
  const cluster = createCluster(options, log, hooks) as Cluster;
  const bridge: RunningBridge = await startClusterBridge(cluster);
  cleanups.push(() => bridge.close());
  const client: TestClient = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
  return { cluster, client, lines };
}

async function servedBy(client: TestClient, calls: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < calls; i++) names.push((await client.unary({ text: "hi" })).text);
  return names;
}

function tally(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

describe("upstream cluster: balancing", () => {
  after(cleanUp);
  it("round_robin spreads calls evenly over every replica", async () => {
    const rs = await replicas(3, "rr");
    const { client } = await bridgeFor(clusterOptions({ endpoints: rs.map((r) => r.address) }));
    assert.deepEqual(tally(await servedBy(client, 9)), { rr0: 3, rr1: 3, rr2: 3 });
  });

  it("least_requests sends new calls to the replica with fewer calls in flight", async () => {
    const rs = await replicas(2, "lr");
    const { client } = await bridgeFor(clusterOptions({ endpoints: rs.map((r) => r.address), lbPolicy: "least_requests" }));
    // One slow call occupies one replica; every call made meanwhile sees it busier.
    let busy = "";
    const slow = client.unary({ text: "slow", delayMs: 60_000 }, { timeoutMs: 30_000 }).catch(() => undefined);
    await until(() => rs.some((r) => r.calls === 1), "the slow call to arrive");
    busy = rs.find((r) => r.calls === 1)!.name;
    const names = await servedBy(client, 6);
    assert.ok(!names.includes(busy), `calls went to the idle replica, not ${busy}: ${names.join(",")}`);
    void slow;
  });
});

describe("upstream cluster: failures", () => {
  after(cleanUp);
  it("a killed replica: its in-flight call fails with unavailable, every later call succeeds on the others", async () => {
    const rs = await replicas(3, "k");
    const { client } = await bridgeFor(clusterOptions({ endpoints: rs.map((r) => r.address) }));
    // Round robin starts at the first endpoint: the slow call lands on k0.
    const inFlight = client.unary({ text: "slow", delayMs: 60_000 });
    await until(() => rs[0]!.calls === 1, "the slow call to reach k0");
    rs[0]!.kill();
    await assert.rejects(inFlight, (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable, error.message);
      return true;
    });
    // Calls that pick k0 now fail to connect before anything was sent: retried
    // elsewhere, all of them, also when they arrive together.
    const names = (await Promise.all(Array.from({ length: 12 }, (_, i) => client.unary({ text: String(i) })))).map((r) => r.text);
    assert.ok(!names.includes("k0"), names.join(","));
    assert.deepEqual(Object.keys(tally(names)).sort(), ["k1", "k2"]);
    assert.equal(rs[1]!.calls + rs[2]!.calls, 12);
  });

  it("a unary call to an unreachable endpoint is retried on another one", async () => {
    const [live] = await replicas(1, "live");
    const { client, lines } = await bridgeFor(clusterOptions({ endpoints: [await deadAddress(), live!.address] }));
    // The first pick is the dead endpoint; the refused connection never carried the call.
    assert.equal((await client.unary({ text: "first" })).text, "live0");
    assert.equal(live!.calls, 1);
    assert.ok(lines.some((l) => l.level === "warn" && /connection to 127\.0\.0\.1:\d+ failed/.test(l.message)), JSON.stringify(lines));
  });

  it("no usable endpoint: calls fail at once with unavailable naming the cluster", async () => {
    const { client } = await bridgeFor(clusterOptions({ name: "orders", endpoints: [await deadAddress(), await deadAddress()] }));
    // The first call finds both unreachable (and is retried once on the other one) ...
    await assert.rejects(client.unary({ text: "a" }), (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable);
      assert.match(error.rawMessage, /upstream "orders" unavailable/);
      return true;
    });
    // ... after which both back off, and calls fail without trying to connect.
    await assert.rejects(client.unary({ text: "b" }), (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable);
      assert.match(error.rawMessage, /cluster "orders" has no usable endpoint: 127\.0\.0\.1:\d+ backing off after a failed connection \(.*ECONNREFUSED/);
      return true;
    });
  });

  it("passive ejection: an endpoint whose connections keep failing leaves rotation", async () => {
    const [live] = await replicas(1, "ej");
    const dead = await deadAddress();
    // Backoff of 0 ms: only ejection can keep the dead endpoint out.
    const { cluster, client } = await bridgeFor(
      clusterOptions({ endpoints: [dead, live!.address], reconnectBaseMs: 0, reconnectMaxMs: 0, outlierConsecutiveFailures: 2, outlierEjectionMs: 60_000 }),
    );
    for (let i = 0; i < 6; i++) assert.equal((await client.unary({ text: String(i) })).text, "ej0");
    await until(() => !cluster.usableAddresses().includes(dead), "the dead endpoint to be ejected");
    assert.deepEqual(cluster.usableAddresses(), [live!.address]);
  });
});

describe("upstream cluster: health checks", () => {
  after(cleanUp);
  it("a replica that turns NOT_SERVING leaves rotation, and comes back when SERVING again", async () => {
    const rs = await replicas(2, "h");
    const { cluster, client } = await bridgeFor(
      clusterOptions({
        endpoints: rs.map((r) => r.address),
        healthCheck: { service: "bridge.test.v1.TestService", intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
      }),
    );
    assert.deepEqual(tally(await servedBy(client, 4)), { h0: 2, h1: 2 });
    rs[0]!.health.setStatus("bridge.test.v1.TestService", "NOT_SERVING");
    await until(() => cluster.usableAddresses().length === 1, "h0 to leave rotation");
    assert.deepEqual(tally(await servedBy(client, 4)), { h1: 4 });
    rs[0]!.health.setStatus("bridge.test.v1.TestService", "SERVING");
    await until(() => cluster.usableAddresses().length === 2, "h0 to come back");
    assert.deepEqual(tally(await servedBy(client, 4)), { h0: 2, h1: 2 });
  });

  it("an unreachable replica fails its health check and leaves rotation before any call tries it", async () => {
    const [live] = await replicas(1, "hu");
    const dead = await deadAddress();
    const { cluster, client } = await bridgeFor(
      clusterOptions({
        endpoints: [dead, live!.address],
        healthCheck: { service: "", intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
      }),
    );
    await until(() => cluster.usableAddresses().length === 1, "the dead endpoint to fail its check");
    assert.deepEqual(tally(await servedBy(client, 3)), { hu0: 3 });
  });
});

describe("upstream cluster: health checks against a server without the health service", () => {
  after(cleanUp);

  it("its checks fail with UNIMPLEMENTED and the cluster's error says so", async () => {
    const plain = await startGrpcJsServer();
    cleanups.push(() => plain.close());
    const { cluster, client } = await bridgeFor(
      clusterOptions({
        name: "legacy",
        endpoints: [plain.address],
        healthCheck: { service: "", intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
      }),
    );
    await until(() => cluster.usableAddresses().length === 0, "the endpoint to fail its check");
    await assert.rejects(client.unary({ text: "x" }), (error: ConnectError) => {
      assert.equal(error.code, Code.Unavailable);
      assert.match(error.rawMessage, /cluster "legacy" has no usable endpoint: 127\.0\.0\.1:\d+ failing health checks \(health check: grpc-status 12/);
      return true;
    });
  });
});

describe("upstream cluster: DNS", () => {
  after(cleanUp);
  it("re-resolution adds a new address and drains one that disappeared", async () => {
    const first = await startReplica("dns1", { host: "127.0.0.1" });
    cleanups.push(() => first.close());
    const second = await startReplica("dns2", { host: "127.0.0.2", port: first.port });
    cleanups.push(() => second.close());
    let answer = ["127.0.0.1"];
    const lookedUp: string[] = [];
    const { cluster, client } = await bridgeFor(
      clusterOptions({ endpoints: [`replicas.test:${first.port}`], authority: "replicas.test", dnsRefreshMs: 20 }),
      {
        lookup: async (hostname) => {
          lookedUp.push(hostname);
          return answer;
        },
      },
    );
    await until(() => cluster.usableAddresses().join() === `127.0.0.1:${first.port}`, "the first lookup");
    assert.equal(lookedUp[0], "replicas.test");
    assert.deepEqual(tally(await servedBy(client, 2)), { dns1: 2 });
    answer = ["127.0.0.1", "127.0.0.2"];
    await until(() => cluster.usableAddresses().length === 2, "the new address to join");
    assert.deepEqual(tally(await servedBy(client, 4)), { dns1: 2, dns2: 2 });
    answer = ["127.0.0.2"];
    await until(() => cluster.usableAddresses().length === 1, "the removed address to leave");
    assert.deepEqual(tally(await servedBy(client, 2)), { dns2: 2 });
  });
});

describe("upstream cluster: connection pool", () => {
  after(cleanUp);

  it("opens another connection when the peer's MAX_CONCURRENT_STREAMS is reached, instead of queueing", async () => {
    // Answers nothing until six calls are open at once: queued calls would never get there.
    const server = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    const waiting: http2.ServerHttp2Stream[] = [];
    let sessions = 0;
    server.on("session", () => sessions++);
    server.on("stream", (stream) => {
      stream.resume();
      waiting.push(stream);
      if (waiting.length < 6) return;
      for (const held of waiting) {
        held.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        held.on("wantTrailers", () => held.sendTrailers({ "grpc-status": "0" }));
        held.end(Buffer.from([0, 0, 0, 0, 0]));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { client } = await bridgeFor(clusterOptions({ endpoints: [`127.0.0.1:${(server.address() as net.AddressInfo).port}`] }));
    // The first connection learns the peer's limit from its SETTINGS before the burst.
    const warm = client.unary({ text: "warm" });
    await until(() => waiting.length === 1, "the first call");
    const burst = Array.from({ length: 5 }, (_, i) => client.unary({ text: String(i) }));
    await Promise.all([warm, ...burst]);
    assert.equal(sessions, 3);
  });
});

describe("upstream cluster: what failures log", () => {
  after(cleanUp);

  it("an unreachable replica logs one warning with its cause, not one (with a stack trace) per reconnect attempt; 'usable' never quotes a stale error", async () => {
    const dead = await deadAddress();
    const { log, lines } = recordingLog();
    const cluster = createCluster(
      clusterOptions({ endpoints: [dead], reconnectBaseMs: 5, reconnectMaxMs: 10, outlierConsecutiveFailures: 0 }),
      log,
    ) as Cluster;
    cleanups.push(() => cluster.close(true));
    const failures = () => lines.filter((l) => l.message.includes(`connection to ${dead} failed`)).length;
    for (let attempt = 1; attempt <= 4; attempt++) {
      await until(() => cluster.usableAddresses().length === 1, "the endpoint to be tried again");
      const { stream } = cluster.request({ ":method": "POST", ":path": "/bridge.test.v1.TestService/Unary" });
      stream.on("error", () => {});
      await until(() => failures() === attempt, `connection failure ${attempt}`);
    }
    const warnings = lines.filter((l) => l.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.match(warnings[0]!.message, new RegExp(`connection to ${dead.replace(/\./g, "\\.")} failed: .*ECONNREFUSED`));
    assert.equal(lines.filter((l) => l.level === "debug" && l.message === warnings[0]!.message).length, 3);
    assert.ok(!lines.some((l) => /usable \(/.test(l.message)), JSON.stringify(lines));
  });

  it("a DNS name that does not resolve is one warning, not one per refresh", async () => {
    const { log, lines } = recordingLog();
    let lookups = 0;
    const cluster = createCluster(clusterOptions({ endpoints: ["users-1.users.svc:50051"], dnsRefreshMs: 5 }), log, {
      lookup: async () => {
        lookups++;
        throw new Error("getaddrinfo ENOTFOUND users-1.users.svc");
      },
    }) as Cluster;
    cleanups.push(() => cluster.close(true));
    await until(() => lookups >= 4, "four DNS rounds");
    const warnings = lines.filter((l) => l.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(lines));
    assert.match(warnings[0]!.message, /DNS lookup of "users-1\.users\.svc" failed: getaddrinfo ENOTFOUND/);
  });
});
