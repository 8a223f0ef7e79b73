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

/**
 * The V8 flag that counts ArrayBuffer memory (every Buffer of a message)
 * in the heap's global limit, which grows with the heap, instead of a fixed
 * 64 MB of new external memory per full GC.
 *
 * Why: a stream of 1 KiB messages allocates a Buffer per upstream chunk,
 * and every 64 MB of them started a full GC that marked the bridge's whole
 * live heap (~18 MB, against the thin bridge's ~7.5 MB): 93 full GCs in 8 s
 * of 1 KiB x1024 server streams, ~20% of the CPU in marking and sweeping
 * (`perf`). Counted in the global limit, with the growth fixed above, they
 * come ~40% less often (64 in 8 s, for 20% more streams); CPU per stream
 * 1330 -> 1115 µs, 64 KiB unary c16 0.91x the CPU per call (A/A 0.98),
 * 1 KiB c64 and 64 B c256 unchanged (0.99x, A/A 1.01 and 0.97). The price is
 * memory under such load: peak RSS of the stream load 193-201 -> 256-269 MiB.
 * docs/architecture.md, "Heap growth".
 */
export const externalMemoryFlag = "--external-memory-accounted-in-global-limit";

const ownExternalSetting = /^--(no-?)?external[-_]memory[-_]accounted[-_]in[-_]global[-_]limit(=|$)/;

/**
 * The flag the CLI sets, or undefined: when the operator set it either way
 * on Node's command line, or when this V8 does not know it (it came after
 * V8 12.4, Node 22's; V8 13.6, Node 24's, has it), since V8 answers an
 * unknown flag with an error on stderr.
 */
export function externalMemoryLimitFlag(execArgv: readonly string[], v8Version: string): string | undefined {
  if (execArgv.some((arg) => ownExternalSetting.test(arg))) return undefined;
  const [major = 0, minor = 0] = v8Version.split(".").map(Number);
  if (major < 13 || (major === 13 && minor < 6)) return undefined;
  return externalMemoryFlag;
}

/** Sets the external-memory flag in this process when it applies; returns what it set, for the startup log. */
export function countExternalMemoryInHeapLimit(): string | undefined {
  const flag = externalMemoryLimitFlag(process.execArgv, process.versions.v8);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
