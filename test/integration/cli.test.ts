/**
 * The npx entry point as a user runs it: a child process with flags.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Agent } from "node:http";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { startGrpcJsServer } from "../support/grpc-js-server.js";
import { decodeEchoResponse, echoRequest, send } from "../support/raw-http.js";
import { selfSignedCert } from "../support/tls.js";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";

const cli = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

function run(args: string[]) {
  // No drain delay: the 5 s default is for load balancers, not tests.
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CONNECT_GRPC_BRIDGE_DRAIN_DELAY_MS: "0" } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code]) => code as number);
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe("connect-grpc-bridge CLI", () => {
  it("--help documents every flag", async () => {
    const p = run(["--help"]);
    assert.equal(await p.exited, 0);
    for (const flag of ["--upstream", "--port", "--host", "--max-request-bytes", "--max-response-bytes", "--cors-origin", "--cors-allow-header", "--tls-cert", "--tls-key", "--log-level", "--help", "--workers", "--config", "--from-envoy", "--print-config", "CONNECT_GRPC_BRIDGE_"]) {
      assert.ok(p.out().includes(flag), flag);
    }
  });

  it("fails fast without --upstream, naming it", async () => {
    const p = run([]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /--upstream is required/);
  });

  it("rejects a bad upstream address", async () => {
    const p = run(["--upstream", "https://x:1", "--port", "0"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /for TLS define a cluster with "tls" in a config file/);
  });

  async function listening(p: ReturnType<typeof run>): Promise<string> {
    while (!/listening on https?:\/\/\S+:\d+/.test(p.out())) await once(p.child.stdout, "data");
    return /listening on (https?:\/\/\S+:\d+)/.exec(p.out())![1];
  }

  async function preflight(url: string, origin: string) {
    return send(`${url}/a.B/C`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
  }

  it("CORS: any origin by default on loopback; only --cors-origin ones when given", async () => {
    const open = run(["--upstream", "127.0.0.1:1", "--port", "0", "--log-level", "warn"]);
    const strict = run(["--upstream", "127.0.0.1:1", "--port", "0", "--log-level", "warn", "--cors-origin", "http://app.test"]);
    try {
      const any = await preflight(await listening(open), "http://whoever.test");
      assert.equal(any.headers["access-control-allow-origin"], "*");
      const strictUrl = await listening(strict);
      assert.equal((await preflight(strictUrl, "http://app.test")).headers["access-control-allow-origin"], "http://app.test");
      assert.equal((await preflight(strictUrl, "http://other.test")).headers["access-control-allow-origin"], undefined);
    } finally {
      open.child.kill("SIGKILL");
      strict.child.kill("SIGKILL");
    }
  });

  it("an option error from the plugin is printed with the program name once (was doubled)", async () => {
    const p = run(["--upstream", "127.0.0.1:1", "--port", "0", "--descriptor-set", "/nonexistent/x.binpb"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /^connect-grpc-bridge: cannot read descriptor set "\/nonexistent\/x\.binpb"/);
  });

  it("rejects a malformed --cors-origin, naming it", async () => {
    const p = run(["--upstream", "127.0.0.1:1", "--port", "0", "--cors-origin", "app.test"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /cors\.allowedOrigins/);
  });

  it("serves TLS with --tls-cert/--tls-key (HTTP/2 by ALPN)", async () => {
    const upstream = await startGrpcJsServer();
    const { key, cert } = selfSignedCert();
    const dir = mkdtempSync(join(tmpdir(), "bridge-cli-tls-"));
    writeFileSync(join(dir, "key.pem"), key);
    writeFileSync(join(dir, "cert.pem"), cert);
    const p = run(["--upstream", upstream.address, "--port", "0", "--log-level", "warn", "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")]);
    try {
      const url = await listening(p);
      assert.match(url, /^https:\/\//);
      const client = createClient(TestService, createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions: { ca: cert } }));
      assert.equal((await client.unary({ text: "tls" })).text, "tls");
    } finally {
      p.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      await upstream.close();
    }
  });

  it("listens on --port 0, prints its address, bridges calls, stops on SIGTERM", async () => {
    const upstream = await startGrpcJsServer();
    const p = run(["--upstream", upstream.address, "--port", "0", "--log-level", "warn"]);
    try {
      const url = await listening(p);
      const res = await send(`${url}/bridge.test.v1.TestService/Unary`, {
        headers: { "content-type": "application/proto" },
        body: echoRequest({ text: "cli" }),
      });
      assert.equal(decodeEchoResponse(res.body).text, "cli");
      p.child.kill("SIGTERM");
      assert.equal(await p.exited, 0);
      // Regression: a match-all content-type RegExp not anchored with "^"
      // made Fastify print a security warning at every start.
      assert.doesNotMatch(p.err(), /Warning|FST[A-Z]*\d/);
    } finally {
      p.child.kill("SIGKILL");
      await upstream.close();
    }
  });

  it("--workers 2: two processes serve one port, a crashed worker is replaced, SIGTERM stops them all", async () => {
    const upstream = await startGrpcJsServer();
    const p = run(["--upstream", upstream.address, "--port", "0", "--log-level", "warn", "--workers", "2"]);
    try {
      const url = await listening(p);
      assert.match(p.out(), /\(2 workers\)/);
      const workers = childrenOf(p.child.pid!);
      assert.equal(workers.length, 2);
      // A connection per call: the primary hands connections out round robin,
      // and a kept-alive one would die with the worker killed below.
      const agent = new Agent({ keepAlive: false });
      const client = createClient(TestService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { agent } }));
      for (let i = 0; i < 4; i++) assert.equal((await client.unary({ text: `w${i}` })).text, `w${i}`);

      process.kill(workers[0]!, "SIGKILL");
      while (!/restarting it/.test(p.err())) await once(p.child.stderr, "data");
      assert.equal((await client.unary({ text: "after crash" })).text, "after crash");

      p.child.kill("SIGTERM");
      assert.equal(await p.exited, 0);
      for (const pid of workers.slice(1)) assert.throws(() => process.kill(pid, 0), "worker still running after SIGTERM");
    } finally {
      p.child.kill("SIGKILL");
      await upstream.close();
    }
  });
});

/** Pids of the direct children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
    } catch {
      // ended while we looked
    }
  }
  return children;
}
