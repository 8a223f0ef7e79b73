/**
 * What the CLI prints when it starts, and when it cannot: one listening line,
 * and start-up failures in one line without the usage text.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { once } from "node:events";
import { runCli, type CliProcess } from "../support/cli-process.js";
import { externalMemoryFlag, externalMemoryLimitFlag, heapGrowthFlag } from "../../src/heap-growth.js";
import { ownsYoungGeneration } from "../../src/young-generation.js";

/** Starts the CLI at debug level (Node started with `nodeArgs`), runs `check` on its output, then kills it. */
async function atDebugStart(nodeArgs: string[], check: (p: CliProcess) => Promise<void>): Promise<void> {
  const p = runCli(["--upstream", "127.0.0.1:1", "--port", "0", "--log-level", "debug"], {}, nodeArgs);
  try {
    await check(p);
  } finally {
    p.child.kill("SIGKILL");
  }
}

describe("CLI start-up output", () => {
  it("a port in use is one line, without the usage (the 45-line usage followed it)", async () => {
    const taken = createServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    try {
      const p = runCli(["--upstream", "127.0.0.1:1", "--port", String((taken.address() as AddressInfo).port)]);
      assert.equal(await p.exited, 2);
      assert.match(p.err(), /^connect-grpc-bridge: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/);
    } finally {
      taken.close();
    }
  });

  it("a missing TLS file is one line, without the usage", async () => {
    const p = runCli(["--upstream", "127.0.0.1:1", "--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /^connect-grpc-bridge: cannot read the TLS files: ENOENT[^\n]*\/nonexistent\/cert\.pem'\n$/);
  });

  it("a missing descriptor set is one line, without the usage", async () => {
    const p = runCli(["--upstream", "127.0.0.1:1", "--port", "0", "--descriptor-set", "/nonexistent/x.binpb"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /^connect-grpc-bridge: cannot read descriptor set "\/nonexistent\/x\.binpb"[^\n]*\n$/);
  });

  it("an unknown flag is a usage error: the message, then the usage", async () => {
    const p = runCli(["--bogus"]);
    assert.equal(await p.exited, 2);
    assert.match(p.err(), /^connect-grpc-bridge: Unknown option '--bogus'[^\n]*\n\nUsage: connect-grpc-bridge/);
  });

  it("one listening line at the default log level (Fastify's own \"Server listening at\" was printed too)", async () => {
    const p = runCli(["--upstream", "127.0.0.1:1", "--port", "0"]);
    try {
      await p.listening();
      // The log line after the listening one: start-up output is complete.
      await p.printed(/"msg":"CORS: allowed origins any"/);
      const lines = p.out().split("\n").filter((line) => /listening/i.test(line));
      assert.deepEqual(lines.length, 1, p.out());
      assert.match(lines[0]!, /^connect-grpc-bridge listening on http:\/\/127\.0\.0\.1:\d+ -> upstream 127\.0\.0\.1:1$/);
      assert.doesNotMatch(p.out(), /Server listening/);
    } finally {
      p.child.kill("SIGKILL");
    }
  });

  it("the CLI fixes V8's heap growth at 4x and says so at debug", async () => {
    await atDebugStart([], async (p) => {
      await p.printed(/"msg":"V8 heap growth: --heap-growing-percent=300 /);
    });
  });

  it("an operator's own --heap-growing-percent wins over the CLI's", async () => {
    await atDebugStart(["--heap-growing-percent=0"], async (p) => {
      await p.printed(/"msg":"V8 heap growth: the process's own --heap-growing-percent"/);
      assert.doesNotMatch(p.out(), /--heap-growing-percent=300/);
    });
  });

  it("heap growth: either spelling of the flag counts as the operator's", () => {
    assert.equal(heapGrowthFlag(["--heap_growing_percent=150"]), undefined);
    assert.equal(heapGrowthFlag(["--heap-growing-percent", "150"]), undefined);
    assert.equal(heapGrowthFlag(["--heap-growing-percentage=1"]), "--heap-growing-percent=300");
    assert.equal(heapGrowthFlag(["--max-old-space-size=512"]), "--heap-growing-percent=300");
  });

  it("the CLI counts external memory in V8's global limit where V8 has the flag, and says so at debug", async () => {
    const expected = externalMemoryLimitFlag([], process.versions.v8);
    await atDebugStart([], async (p) => {
      if (expected === undefined) {
        await p.printed(/"msg":"V8 external memory: V8's own limit/);
        // Node 22's V8 does not know the flag: setting it would print "unrecognized flag".
        assert.doesNotMatch(p.err(), /unrecognized flag/);
      } else {
        await p.printed(/"msg":"V8 external memory: --external-memory-accounted-in-global-limit /);
      }
    });
  });

  it("external memory: only on V8 13.6 and later, and never over the operator's own setting", () => {
    assert.equal(externalMemoryLimitFlag([], "13.6.233.17-node.63"), externalMemoryFlag);
    assert.equal(externalMemoryLimitFlag([], "14.1.0"), externalMemoryFlag);
    assert.equal(externalMemoryLimitFlag([], "13.5.9"), undefined);
    assert.equal(externalMemoryLimitFlag([], "12.4.254.21-node.57"), undefined);
    assert.equal(externalMemoryLimitFlag(["--no-external-memory-accounted-in-global-limit"], "13.6.233"), undefined);
    assert.equal(externalMemoryLimitFlag(["--external_memory_accounted_in_global_limit"], "13.6.233"), undefined);
    assert.equal(externalMemoryLimitFlag(["--max-old-space-size=512"], "13.6.233"), externalMemoryFlag);
  });

  it("the CLI caps the young generation, and says so at debug level", async () => {
    await atDebugStart([], async (p) => {
      await p.printed(/"msg":"V8 young generation: capped at --max-semi-space-size=32 /);
    });
  });

  it("an operator's own --max-semi-space-size wins over the CLI's cap", async () => {
    await atDebugStart(["--max-semi-space-size=8"], async (p) => {
      await p.printed(/"msg":"V8 young generation: the process's own semi-space setting"/);
    });
  });

  it("young generation: the operator's setting counts from the command line or NODE_OPTIONS, in either spelling", () => {
    assert.equal(ownsYoungGeneration(["--max_semi_space_size=16"], undefined), true);
    assert.equal(ownsYoungGeneration(["--semi-space-growth-factor", "4"], undefined), true);
    assert.equal(ownsYoungGeneration([], "--enable-source-maps  --max-semi-space-size=16"), true);
    assert.equal(ownsYoungGeneration(["--max-old-space-size=512"], "--max-semi-space-sizes=1"), false);
    assert.equal(ownsYoungGeneration([], undefined), false);
  });

  it("--version prints the package's version", async () => {
    const p = runCli(["--version"]);
    assert.equal(await p.exited, 0);
    assert.match(p.out(), /^\d+\.\d+\.\d+\n$/);
    assert.equal(p.err(), "");
  });
});
