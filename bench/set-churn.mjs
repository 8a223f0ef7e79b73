// Why CallDrain (src/drain.ts) keeps its open calls in a list and not a Set:
// 16 live entries churned through a long-lived Set, the way a bridge adds
// and deletes one entry per call. A Set whose table first aged into V8's
// old space keeps what it held alive through scavenges (promoted) until a
// full GC; a fresh Set, or an intrusive list, does not.
//   node bench/set-churn.mjs            all three side by side
//   node bench/set-churn.mjs --child set aged   one run (what the parent runs)
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const churns = 3_000_000;
const live = 16;

function churn(structure, aged) {
  const set = new Set();
  let head;
  if (aged) {
    // Let the Set's table survive a few scavenges first, as a bridge's
    // does between its start and its first calls.
    set.add({});
    for (let i = 0; i < 2_000_000; i++) globalThis.sink = { i };
  }
  const window = [];
  for (let i = 0; i < churns; i++) {
    const entry = { payload: new Array(100).fill(0), prev: undefined, next: undefined };
    if (structure === "set") set.add(entry);
    else {
      entry.next = head;
      if (head !== undefined) head.prev = entry;
      head = entry;
    }
    window.push(entry);
    if (window.length <= live) continue;
    const old = window.shift();
    if (structure === "set") set.delete(old);
    else {
      if (old.prev !== undefined) old.prev.next = old.next;
      else head = old.next;
      if (old.next !== undefined) old.next.prev = old.prev;
      old.prev = old.next = undefined;
    }
  }
}

if (process.argv[2] === "--child") {
  churn(process.argv[3], process.argv[4] === "aged");
} else {
  const self = fileURLToPath(import.meta.url);
  for (const [structure, aged] of [["set", "aged"], ["set", "fresh"], ["list", "aged"]]) {
    const run = spawnSync(process.execPath, ["--trace-gc-nvp", self, "--child", structure, aged], { encoding: "utf8", maxBuffer: 1 << 28 });
    let scavenges = 0;
    let pauseMs = 0;
    let promoted = 0;
    let allocated = 0;
    for (const line of run.stdout.split("\n")) {
      if (!line.includes(" gc=s ")) continue;
      scavenges++;
      pauseMs += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
      allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
    }
    console.log(
      `${structure} (${aged}): ${scavenges} scavenges, ${Math.round(pauseMs)} ms; ` +
        `${(allocated / 1e6).toFixed(0)} MB allocated, ${(promoted / 1e6).toFixed(1)} MB promoted`,
    );
  }
}
