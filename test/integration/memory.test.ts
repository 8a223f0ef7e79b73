/**
 * Bounded memory under a slow reader: bench/memory-stream.mjs streams 1 GiB
 * through a bridge in its own process to a client reading at a throttled
 * rate, sampling the bridge's RSS. Whatever the stream's length, the bridge
 * holds about one flow-control window of it.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../../bench/memory-stream.mjs", import.meta.url));
/** Growth allowed over the idle bridge: windows, socket buffers, GC slack. */
const boundMiB = 96;

it(`a 1 GiB server stream to a throttled reader keeps the bridge's RSS within ${boundMiB} MiB of idle`, async (t) => {
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [script, "--gib", "1", "--mbps", "200"], { timeout: 60_000 }, (error, out) =>
      error ? reject(error) : resolve(out),
    ),
  );
  const result = JSON.parse(stdout.trim().split("\n").pop()!) as {
    streamedMiB: number;
    bridgeRssMiB: { baseline: number; peak: number; final: number };
  };
  t.diagnostic(JSON.stringify(result));
  assert.equal(result.streamedMiB, 1024);
  assert.ok(
    result.bridgeRssMiB.peak - result.bridgeRssMiB.baseline < boundMiB,
    `RSS grew from ${result.bridgeRssMiB.baseline} to ${result.bridgeRssMiB.peak} MiB`,
  );
});
