/**
 * A real Prometheus scrapes the bridge's admin listener: the call counts
 * the test just made (Connect, gRPC-Web, gRPC; a success and an error each)
 * are what Prometheus's HTTP API answers, by protocol, method and code; and
 * `promtool check metrics` accepts the exposition.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";

const prometheus = "/usr/bin/prometheus";
const promtool = "/usr/bin/promtool";
const skip = !existsSync(prometheus) || !existsSync(promtool) ? "prometheus (Debian package prometheus, with promtool) not installed" : false;

/** A port the OS says is free now (Prometheus takes no port 0 that it would tell us). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("metrics scraped by a real Prometheus", { skip }, () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  let adminUrl: string;
  let dir: string;
  let server: ChildProcess | undefined;
  let promUrl: string;
  let promLog = "";

  before(async () => {
    upstream = await startGrpcJsServer();
    let listening!: (url: string) => void;
    const adminListening = new Promise<string>((resolve) => (listening = resolve));
    bridge = await startBridge(upstream.address, {
      metrics: { enabled: true },
      admin: { port: 0, onListening: listening },
    });
    adminUrl = await adminListening;
    dir = mkdtempSync(join(tmpdir(), "bridge-prometheus-"));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "scrape_configs:",
        "  - job_name: bridge",
        "    static_configs:",
        `      - targets: ["${new URL(adminUrl).host}"]`,
        "",
      ].join("\n"),
    );
    server = spawn(
      prometheus,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    server.stderr!.on("data", (d) => (promLog += d));
  });

  after(async () => {
    if (server !== undefined && server.exitCode === null) {
      server.kill("SIGTERM");
      await once(server, "exit");
    }
    await bridge?.close();
    await upstream?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Asks Prometheus `query` until `done` accepts the samples (each scrape is 1 s apart). */
  async function queryUntil(query: string, done: (samples: Sample[]) => boolean, timeoutMs = 30_000): Promise<Sample[]> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (server!.exitCode !== null) assert.fail(`prometheus exited (${server!.exitCode}): ${promLog}`);
      try {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await res.json()) as { status: string; data?: { result: Sample[] } };
        last = body;
        if (body.status === "success" && done(body.data!.result)) return body.data!.result;
      } catch (error) {
        last = error; // not up yet
      }
      if (Date.now() > deadline) assert.fail(`Prometheus never answered ${query} as expected; last answer: ${JSON.stringify(last)}; log: ${promLog}`);
      // Wait for the next scrape to be possible: Prometheus's own target status would need polling too.
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  it("has each protocol's calls by method and code, as made", async () => {
    const transports = {
      connect: createConnectTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }),
      "grpc-web": createGrpcWebTransport({ baseUrl: bridge.baseUrl, httpVersion: "1.1" }),
      grpc: createGrpcTransport({ baseUrl: bridge.baseUrl }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const client = createClient(TestService, transport);
      // Two successes and one error each, so counts are not all 1.
      assert.equal((await client.unary({ text: `${name}-1` })).text, `${name}-1`);
      assert.equal((await client.unary({ text: `${name}-2` })).text, `${name}-2`);
      const error = await client.unary({ text: `${name}-3`, fail: { code: Code.NotFound, message: "nope" } }).then(
        () => assert.fail("expected an error"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error.code, Code.NotFound);
    }
    const query = 'grpc_bridge_rpc_handled_total{job="bridge",service="bridge.test.v1.TestService",method="Unary"}';
    const samples = await queryUntil(query, (result) => result.length === 6);
    const counts = new Map(samples.map((s) => [`${s.metric.protocol} ${s.metric.code}`, Number(s.value[1])]));
    assert.deepEqual(
      Object.fromEntries([...counts].sort()),
      {
        "connect not_found": 1,
        "connect ok": 2,
        "grpc not_found": 1,
        "grpc ok": 2,
        "grpc-web not_found": 1,
        "grpc-web ok": 2,
      },
    );
    // The histogram's count agrees with the counter (one observation per call).
    const durations = await queryUntil(
      'sum(grpc_bridge_rpc_duration_seconds_count{job="bridge",method="Unary"})',
      (result) => result.length === 1 && Number(result[0]!.value[1]) === 9,
    );
    assert.equal(Number(durations[0]!.value[1]), 9);
    // The upstream is one usable endpoint, with one connection.
    const usable = await queryUntil('grpc_bridge_upstream_endpoints{job="bridge",state="usable"}', (result) => result.length === 1);
    assert.equal(Number(usable[0]!.value[1]), 1);
  });

  it("promtool check metrics accepts the exposition", async () => {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    assert.match(text, /^grpc_bridge_rpc_handled_total\{/m);
    assert.match(text, /^process_cpu_user_seconds_total /m, "process metrics are on by default");
    const check = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  });
});
