/**
 * TLS to cluster endpoints against real @grpc/grpc-js servers with
 * certificates made by openssl during the test: a custom CA, a server name
 * other than the dialled address, mTLS, a wrong CA (unavailable, saying
 * why), and insecureSkipVerify (works, warns once).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { createCluster } from "../../src/upstream/cluster.js";
import type { UpstreamTlsOptions } from "../../src/upstream/cluster-options.js";
import { clusterOptions, recordingLog, startClusterBridge, startReplica, type Replica } from "../support/replicas.js";
import type { RunningBridge } from "../support/bridge.js";
import { testCa, type TestCa } from "../support/tls.js";

describe("upstream cluster over TLS", () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let client: { key: Buffer; cert: Buffer };
  let tlsReplica: Replica;
  let mtlsReplica: Replica;
  const bridges: RunningBridge[] = [];

  before(async () => {
    ca = testCa();
    otherCa = testCa("some other CA");
    // The certificate names the service, not the address dialled.
    const server = ca.issue("users.internal", "DNS:users.internal", "serverAuth");
    client = ca.issue("bridge", "DNS:bridge", "clientAuth");
    const keyCert = [{ private_key: server.key, cert_chain: server.cert }];
    tlsReplica = await startReplica("tls", { credentials: grpc.ServerCredentials.createSsl(null, keyCert, false) });
    mtlsReplica = await startReplica("mtls", { credentials: grpc.ServerCredentials.createSsl(ca.cert, keyCert, true) });
  });
  after(async () => {
    for (const bridge of bridges) await bridge.close();
    await tlsReplica.close();
    await mtlsReplica.close();
    ca.dispose();
    otherCa.dispose();
  });

  async function call(replica: Replica, tls: Partial<UpstreamTlsOptions>) {
    const recorded = recordingLog();
    const options = clusterOptions({
      endpoints: [replica.address],
      authority: "users.internal",
      tls: { ca: undefined, serverName: undefined, cert: undefined, key: undefined, insecureSkipVerify: false, ...tls },
      retry: { maxAttempts: 1, budgetPercent: 20, minRetriesPerSecond: 10 },
    });
    const bridge = await startClusterBridge(createCluster(options, recorded.log));
    bridges.push(bridge);
    const connect = createClient(TestService, createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }));
    const result = await connect.unary({ text: "x" }).then(
      (res) => res.text,
      (error: ConnectError) => error,
    );
    return { result, lines: recorded.lines };
  }

  it("verifies the endpoint with a custom CA and server name", async () => {
    const { result } = await call(tlsReplica, { ca: ca.cert.toString(), serverName: "users.internal" });
    assert.equal(result, "tls");
  });

  it("a certificate from another CA: unavailable, saying the certificate failed to verify", async () => {
    const { result } = await call(tlsReplica, { ca: otherCa.cert.toString(), serverName: "users.internal" });
    assert.ok(result instanceof ConnectError, String(result));
    assert.equal(result.code, Code.Unavailable);
    assert.match(result.rawMessage, /^upstream "test" unavailable: 127\.0\.0\.1:\d+: unable to verify the first certificate(; if the root CA is installed locally, try running Node\.js with --use-system-ca)?$/);
  });

  it("the wrong server name: unavailable, naming the mismatch", async () => {
    const { result } = await call(tlsReplica, { ca: ca.cert.toString(), serverName: "orders.internal" });
    assert.ok(result instanceof ConnectError, String(result));
    assert.equal(result.code, Code.Unavailable);
    assert.match(result.rawMessage, /127\.0\.0\.1:\d+: Hostname\/IP does not match certificate's altnames: Host: orders\.internal/);
  });

  it("insecureSkipVerify connects to an unverifiable endpoint and logs a warning once", async () => {
    const { result, lines } = await call(tlsReplica, { insecureSkipVerify: true });
    assert.equal(result, "tls");
    const warnings = lines.filter((l) => l.level === "warn" && /insecureSkipVerify/.test(l.message));
    assert.equal(warnings.length, 1, JSON.stringify(lines));
  });

  it("mTLS: a client certificate is presented and accepted", async () => {
    const { result } = await call(mtlsReplica, {
      ca: ca.cert.toString(),
      serverName: "users.internal",
      cert: client.cert.toString(),
      key: client.key.toString(),
    });
    assert.equal(result, "mtls");
  });

  it("mTLS: without a client certificate the server refuses, and the call fails with unavailable", async () => {
    const { result } = await call(mtlsReplica, { ca: ca.cert.toString(), serverName: "users.internal" });
    assert.ok(result instanceof ConnectError, String(result));
    assert.equal(result.code, Code.Unavailable, result.message);
    assert.match(result.rawMessage, /certificate required/);
  });

  it("ALPN: a TLS server that speaks only HTTP/1.1 is refused at the handshake, and the call fails with unavailable", async () => {
    const leaf = ca.issue("web.internal", "IP:127.0.0.1", "serverAuth");
    const web = https.createServer({ key: leaf.key, cert: leaf.cert, ALPNProtocols: ["http/1.1"] }, (_req, res) => res.end("h1"));
    await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
    try {
      const address = `127.0.0.1:${(web.address() as AddressInfo).port}`;
      const { result } = await call({ address } as Replica, { ca: ca.cert.toString() });
      assert.ok(result instanceof ConnectError, String(result));
      assert.equal(result.code, Code.Unavailable);
      assert.match(result.rawMessage, /no application protocol/);
    } finally {
      web.closeAllConnections();
      await new Promise<void>((resolve) => web.close(() => resolve()));
    }
  });
});
