// Callgrind counts JIT code as bare addresses (`???:0x281efb80`): V8's
// generated code has no symbols. Node's `--perf-basic-prof` logs every code
// object V8 creates to /tmp/perf-<pid>.map (address, size, name); this maps
// callgrind's addresses back to JS functions, so instructions per call can
// be read per function (ours, Fastify's, Node's). Code space is reused after
// GCs, so an address can lie in several logged ranges: the latest logged
// one is the code that lived there last.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

/** The code objects of `pid`; `order` is the log line (later = newer). */
function codeRanges(pid) {
  let text;
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, "utf8");
  } catch {
    return [];
  }
  const ranges = [];
  let order = 0;
  for (const line of text.split("\n")) {
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    if (second < 0) continue;
    ranges.push({
      start: parseInt(line.slice(0, first), 16),
      size: parseInt(line.slice(first + 1, second), 16),
      // "JS:*'name file:line:col": the tier marks (*, ^, +, ~, ') say which compiler made it.
      name: line.slice(second + 1).replace(/^JS:[*^+~']*/, ""),
      order: order++,
    });
  }
  return ranges;
}

function nameAt(ranges, largest, address) {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid].start <= address) lo = mid + 1;
    else hi = mid;
  }
  let best;
  for (let i = lo - 1; i >= 0 && ranges[i].start > address - largest - 1; i--) {
    const r = ranges[i];
    if (address < r.start + r.size && (best === undefined || r.order > best.order)) best = r;
  }
  return best?.name;
}

/**
 * Instructions per JS function in callgrind's `files` (from processes started
 * with --perf-basic-prof; `pids` name their maps), self and inclusive.
 * Inclusive counts overlap (a caller's include its callees'), and a function
 * split across tiers sums its tiers.
 */
export function jitFunctionCounts(files, pids) {
  const ranges = pids.flatMap(codeRanges).sort((a, b) => a.start - b.start);
  const largest = ranges.reduce((m, r) => Math.max(m, r.size), 0);
  return { self: countsBy(files, ranges, largest, false), inclusive: countsBy(files, ranges, largest, true) };
}

function countsBy(files, ranges, largest, inclusive) {
  const text = execFileSync("callgrind_annotate", [`--inclusive=${inclusive ? "yes" : "no"}`, "--threshold=100", ...files], {
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  const counts = new Map();
  for (const line of text.split("\n")) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+\?\?\?:0x([0-9a-f]+) \[\?\?\?\]/.exec(line);
    if (m === null) continue;
    const name = nameAt(ranges, largest, parseInt(m[2], 16)) ?? "(JIT code not in the perf map)";
    counts.set(name, (counts.get(name) ?? 0) + Number(m[1].replaceAll(",", "")));
  }
  return counts;
}

/** Deletes the perf maps of `pids` (V8 never does; they grow in /tmp run after run). */
export function removePerfMaps(pids) {
  for (const pid of pids) rmSync(`/tmp/perf-${pid}.map`, { force: true });
}
