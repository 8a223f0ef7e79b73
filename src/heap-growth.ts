/**
 * How fast the bridge process lets V8's old generation grow between full
 * garbage collections. The CLI sets it; the plugin never does (the host
 * process's heap is its owner's to tune).
 *
 * Why: V8 starts a full GC early, when the room left below its old-space
 * limit is no more than the young generation's capacity. It derives that
 * limit from the live heap times a factor it computes from GC and mutator
 * speeds. The bridge's live heap (Fastify, the options schema, connect-es,
 * its own modules: ~19 MB after a full GC) got a factor of ~2 under load.
 * Its new space, grown to 32 MB by the calls' garbage, was then larger than
 * the room left, so a full GC ran about every 130 calls of 64 KiB, marking
 * the whole live heap each time. The thin bridge's 7.7 MB heap got a factor
 * of ~4 and only collected when its ArrayBuffers asked for it (about every
 * 200 calls). With the factor fixed at 4 (V8's own largest for a normal heap),
 * the bridge's full GCs come from its ArrayBuffers too, about every 300 calls.
 * The thin bridge with the same setting did not change (84 and 83 full GCs
 * in 10 s), so this corrects a heuristic the larger heap tripped, not a
 * speed-up any process would get. docs/architecture.md, "Heap growth".
 */
import { setFlagsFromString } from "node:v8";

/** V8's largest growing factor for a normal heap (4x), as V8's flag spells it: percent over 1x. */
export const heapGrowingPercent = 300;

const ownSetting = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * The V8 flag the CLI sets, or undefined when Node was started with a setting
 * of its own (`node --heap-growing-percent=0 .../bin.js` restores V8's
 * heuristic): the operator's value wins. Node does not take this flag from
 * NODE_OPTIONS, so its command line is the only place to look.
 */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  if (execArgv.some((arg) => ownSetting.test(arg))) return undefined;
  return `--heap-growing-percent=${heapGrowingPercent}`;
}

/**
 * Sets the flag in this process (V8 reads it each time it computes a limit,
 * so setting it after start takes effect at the next GC). Returns what it
 * set, for the startup log.
 */
export function tuneHeapGrowth(): string | undefined {
  const flag = heapGrowthFlag(process.execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
