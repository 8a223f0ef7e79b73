// Starting the benchmark's servers as separate processes pinned to cores,
// and reading their CPU time and memory from /proc.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const ticksPerSecond = 100;

/**
 * The bridge CLI's arguments in every benchmark: `upstream` (host:port),
 * an OS-chosen port, no CORS, no logs, no drain delay at shutdown.
 */
export const bridgeArgs = (upstream) => ["--upstream", upstream, "--port", "0", "--cors-origin", "none", "--log-level", "silent", "--drain-delay-ms", "0"];

/**
 * Node flags of every server a rate is measured on (bench/run.mjs,
 * bench/ab.mjs). V8's memory reducer shrinks the heap of a process that
 * went idle, and such a process then costs ~8% more CPU per call for
 * minutes after its load resumes (bench/warmup-curve.mjs --idle;
 * docs/architecture.md, "Idle spells"). A benchmark idles each server while
 * it measures the others (the full run's A/A server for ~5 minutes before
 * its first cell), so without this a server's cost depended on the
 * schedule: the A/A row read 10-40% "noise" that was this. Cells that
 * measure memory (open streams) keep Node's default.
 */
export const rateNodeArgs = ["--no-memory-reducer"];

/**
 * Spawns `node file args...` pinned to `cores` with taskset and waits for the
 * port it prints: a bare number or "listening on http://host:PORT".
 * `node`: the Node binary to run it with (default: the one running the bench).
 */
export async function startServer(name, file, { args = [], env = {}, cores = "0", nodeArgs = [], node = process.execPath } = {}) {
  const child = spawn("taskset", ["-c", cores, node, ...nodeArgs, file, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const port = await new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on https?:\/\/[^\s]*:(\d+)/.exec(output) ?? /^(\d+)\s*$/m.exec(output);
      if (match) {
        child.stdout.off("data", onData);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before listening:\n${output}`)));
  });
  child.stdout.resume();
  child.stderr.resume();
  return {
    name,
    port,
    pid: child.pid,
    /** Its output after the listening line (bench/gc-cost.mjs reads V8's GC trace there). */
    stdout: child.stdout,
    /** The node process (taskset execs into it, so the pid is node's). */
    async stop() {
      // Ended already (by a signal too: then exitCode stays null and "exit" will not come again).
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The pid and every descendant (cluster workers). */
export function processTree(pid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  const tree = [];
  const walk = (p) => {
    tree.push(p);
    for (const child of children.get(p) ?? []) walk(child);
  };
  walk(pid);
  return tree;
}

/** User + system CPU seconds used so far by a process and its descendants. */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone
    }
  }
  return ticks / ticksPerSecond;
}

/** Resident set size in bytes of a process and its descendants. */
export function rssBytes(pid) {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))[1]);
    } catch {
      // gone
    }
  }
  return kib * 1024;
}

/** One line describing the machine, for the results. */
export function machineDescription() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKiB = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  return { cpu: model, cores, memoryGiB: Math.round(memKiB / 1024 / 1024), kernel, node: process.version };
}

/**
 * The machine's CPU time so far (all cores, /proc/stat's first line, in
 * ticks): `steal` is what the hypervisor gave other guests while this one
 * wanted to run. Two readings give the share of a run the host took, which
 * is what makes one full run 4x slower and noisier than the next.
 */
export function cpuTicks() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is inside user)
  return { total: fields.slice(0, 8).reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
}

/** The percentage of CPU time stolen by the host since `before` (a cpuTicks()). */
export function stolenPercent(before) {
  const now = cpuTicks();
  const total = now.total - before.total;
  return total > 0 ? Math.round(((now.steal - before.steal) / total) * 1000) / 10 : 0;
}

/**
 * A config file for the bridge with one cluster (`upstream`) and a service
 * route to it: the production shape, with the cluster layer and the router
 * on the call path, unlike `--upstream`. Returns its path.
 */
export function writeClusterConfig(dir, upstream) {
  const file = join(dir, "bridge.yaml");
  writeFileSync(
    file,
    `clusters:\n  - name: echo\n    endpoints: ["${upstream}"]\nroutes:\n  - service: bridge.test.v1.TestService\n    cluster: echo\n`,
  );
  return file;
}
