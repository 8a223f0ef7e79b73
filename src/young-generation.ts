/**
 * A ceiling on V8's young generation for the CLI's process: semi-spaces of
 * at most 32 MB, half of what Node 24 allows on a 23 GB machine (Node 22
 * stops at 16 there, so on Node 22 it never binds). The plugin never sets it
 * (the host process's heap is its owner's to tune).
 *
 * Why: Node 24 lets the new space grow to 128 MB there (two semi-spaces of
 * 64 MB; Node 22: 32 MB). Opening thousands of long-lived streams at once
 * makes most of what the scavenges see survive, which is V8's signal to grow
 * it, and an idle process runs no GC that would shrink it again: ~6 KiB of
 * RSS per idle stream at 10,000 was that growth. With the ceiling at 32 MB
 * it is ~14 KiB instead of ~18-21. At 16 it was ~13 KiB, but the extra
 * scavenges cost twice as much per call (~3 µs against ~1.5 µs at 64 B
 * c256; docs/architecture.md, "Heap growth").
 *
 * How: V8 sizes the ceiling (`--max-semi-space-size`) only when the process
 * starts, so the CLI cannot set it; it reads `--semi-space-growth-factor`
 * each time it grows the new space, though. After each GC this sets the
 * factor to 1 (no growth) while the new space is at the ceiling or above,
 * and back to V8's 2 once V8 has shrunk it below, so a new space shrunk while
 * idle can still grow under load.
 */
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

/** The ceiling, as `--max-semi-space-size` spells it (MB per semi-space). */
export const semiSpaceCeilingMb = 32;

/** V8's default growth factor, which the cap restores below the ceiling. */
const growthFactor = 2;

const ownSetting = /^--(max|min)[-_]semi[-_]space[-_]size(=|$)|^--semi[-_]space[-_]growth[-_]factor(=|$)/;

/**
 * Whether the operator sized the young generation themselves, on Node's
 * command line or in NODE_OPTIONS (which accepts `--max-semi-space-size`):
 * then theirs wins and the CLI does not cap it.
 */
export function ownsYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((arg) => ownSetting.test(arg));
}

/**
 * Starts capping this process's young generation at the CLI's ceiling.
 * Returns the ceiling as the flag that would set it (for the startup log),
 * or undefined when the operator's own setting stands.
 */
export function capYoungGeneration(): string | undefined {
  if (ownsYoungGeneration(process.execArgv, process.env.NODE_OPTIONS)) return undefined;
  capYoungGenerationAt(semiSpaceCeilingMb);
  return `--max-semi-space-size=${semiSpaceCeilingMb}`;
}

/**
 * Keeps the new space from growing past semi-spaces of `semiSpaceMb` for the
 * rest of the process. Node runs GC observers a turn or two after the GC, so
 * one doubling may land before the cap acts on the one that reached the
 * ceiling.
 */
export function capYoungGenerationAt(semiSpaceMb: number): void {
  const ceilingBytes = 2 * semiSpaceMb * 1024 * 1024;
  let capped = false;
  // Only the moment after each GC matters, not the entries themselves.
  new PerformanceObserver(() => {
    const atCeiling = newSpaceBytes() >= ceilingBytes;
    if (atCeiling === capped) return;
    capped = atCeiling;
    setFlagsFromString(`--semi-space-growth-factor=${capped ? 1 : growthFactor}`);
  }).observe({ entryTypes: ["gc"] });
}

/** The new space's size as V8 reports it: both semi-spaces. */
function newSpaceBytes(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === "new_space") return space.space_size;
  return 0;
}
