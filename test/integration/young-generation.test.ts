/**
 * The CLI's young-generation cap (src/young-generation.ts), in a child
 * process of its own: it changes a V8 flag of the whole process.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

const moduleUrl = new URL("../../src/young-generation.js", import.meta.url).href;

/**
 * Keeps small objects alive across many turns of the event loop (as held
 * streams do, so that the cap's GC observer runs between the scavenges) and
 * returns the largest new space seen just after a GC, in MB. Between GCs V8
 * may let the new space run past its capacity for a while (seen on Node 24:
 * up to twice it), which is not growth.
 */
function largestNewSpaceMb(capMb: number | undefined): number {
  const script = `
    import { getHeapSpaceStatistics } from "node:v8";
    import { PerformanceObserver } from "node:perf_hooks";
    import { capYoungGenerationAt } from ${JSON.stringify(moduleUrl)};
    const cap = ${capMb ?? "undefined"};
    if (cap !== undefined) capYoungGenerationAt(cap);
    let largest = 0;
    // Observed after the cap's own observer, so after it has acted on each GC.
    new PerformanceObserver(() => {
      const space = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
      largest = Math.max(largest, space.space_size);
    }).observe({ entryTypes: ["gc"] });
    const held = [];
    for (let turn = 0; turn < 400; turn++) {
      for (let i = 0; i < 5000; i++) held.push({ turn, i, list: [i] });
      await new Promise((resolve) => setImmediate(resolve));
    }
    process.stdout.write(String(largest / 2 ** 20));
  `;
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }));
}

describe("young generation cap", () => {
  it("keeps the new space at its ceiling while held objects would grow it past", () => {
    // Without the cap V8 grows it well past two semi-spaces of 2 MB on every
    // supported runtime (Node 22's ceiling is 32 MB): the control proves the
    // load grows it, so the capped run's bound is the cap's doing.
    const uncapped = largestNewSpaceMb(undefined);
    assert.ok(uncapped >= 16, `uncapped new space ${uncapped} MB`);
    const capped = largestNewSpaceMb(2);
    // Two semi-spaces of 2 MB, once doubled: Node runs GC observers a turn or
    // two after the GC, so one growth may land before the cap acts on it; and
    // the few hundred KB V8 may have let it run past its capacity since.
    assert.ok(capped <= 9, `capped at 2 MB semi-spaces, the new space reached ${capped} MB`);
  });
});
