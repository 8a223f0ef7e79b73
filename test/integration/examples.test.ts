/**
 * examples/bridge.local.yaml does what it says: the CLI with it bridges calls
 * to two local replicas of the example GreetService (on ports from the OS
 * here, in place of the file's 50051 and 50052).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GreetService } from "../../gen/example/v1/greet_pb.js";
import { startGreetServer } from "../../examples/greet-server.js";
import { runCli } from "../support/cli-process.js";

const example = new URL("../../../examples/bridge.local.yaml", import.meta.url);

describe("examples/bridge.local.yaml", () => {
  it("runs against local servers: the CLI with it bridges calls to its greet cluster of two replicas", async () => {
    const replicas = [await startGreetServer(), await startGreetServer()];
    const dir = mkdtempSync(join(tmpdir(), "bridge-example-"));
    const yaml = readFileSync(example, "utf8");
    const local = yaml
      .replace("127.0.0.1:50051", replicas[0]!.address)
      .replace("127.0.0.1:50052", replicas[1]!.address)
      .replace("port: 8080", "port: 0");
    assert.equal((local.match(/127\.0\.0\.1:\d+/g) ?? []).filter((a) => /:5005[12]$/.test(a)).length, 0, "the file's ports were replaced");
    writeFileSync(join(dir, "bridge.yaml"), local);
    const p = runCli(["--config", join(dir, "bridge.yaml"), "--log-level", "warn"]);
    try {
      const baseUrl = await p.listening();
      assert.match(p.out(), new RegExp(`clusters greet \\(${replicas[0]!.address}, ${replicas[1]!.address}\\)`));
      const client = createClient(GreetService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      for (const name of ["Ada", "Grace", "Edsger"]) assert.equal((await client.greet({ name })).greeting, `Hello, ${name}!`);
      assert.equal(p.err(), "");
    } finally {
      p.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      for (const replica of replicas) await replica.close();
    }
  });
});
