// Runs before `npm start` and `npm test` so that each works on a fresh clone:
// installs dependencies when node_modules is missing or older than the lock
// file, rebuilds dist/ from scratch (no stale compiled tests), and, for the
// tests, installs the Debian packages they use: chromium for the browser test
// (never a browser download from the network), nghttp2-client for h2load,
// openssl for test certificates; with --bench, wrk and h2load for the benchmarks.
import { execSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";

const forTests = process.argv.includes("--tests");
const run = (command) => execSync(command, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });

const installed = "node_modules/.package-lock.json";
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  console.log("[setup] installing dependencies");
  run("npm install --no-audit --no-fund");
}
rmSync("dist", { recursive: true, force: true });
run("npx tsc -p tsconfig.json");

/** Installs the Debian packages whose binaries are missing (as root, with apt-get). */
function installDebian(purpose, wanted) {
  const needed = wanted.filter(([binary]) => !existsSync(binary));
  if (needed.length === 0) return;
  const packages = needed.map(([, pkg]) => pkg).join(" ");
  if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    console.log(`[setup] installing Debian packages for ${purpose}: ${packages}`);
    run(`apt-get install -y -q ${packages} || (apt-get update -q && apt-get install -y -q ${packages})`);
  } else {
    console.log(`[setup] missing ${packages} and cannot install (needs root and apt-get): ${purpose} that need them are skipped, or fail`);
  }
}

if (process.argv.includes("--bench")) {
  // The load generators: C programs, so they take little of the CPU budget.
  installDebian("the benchmarks", [
    ["/usr/bin/wrk", "wrk"],
    ["/usr/bin/h2load", "nghttp2-client"],
    ["/usr/bin/taskset", "util-linux"],
  ]);
}

if (forTests) {
  run("npx tsc -p examples/browser/tsconfig.json");
  installDebian("the tests", [
    ["/usr/bin/chromium", "chromium"],
    ["/usr/bin/h2load", "nghttp2-client"],
    ["/usr/bin/openssl", "openssl"],
    ["/usr/bin/curl", "curl"],
  ]);
}
