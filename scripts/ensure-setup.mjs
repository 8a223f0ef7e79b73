// Runs before `npm start` and `npm test` so that each works on a fresh clone:
// installs dependencies (npm ci, from the lock file) when node_modules is
// missing or older than the lock file; builds dist/ (for `npm start` only
// when a source is newer than the last build; for the tests always from
// scratch, so no stale compiled test runs); and, for the tests, installs the
// Debian packages they use when run as root: chromium for the browser test
// (never a browser download from the network), nghttp2-client for h2load,
// openssl for test certificates, curl; with --bench, wrk and h2load for the
// benchmarks. SKIP_APT=1 installs no Debian package: the tests that need a
// missing one are then skipped, each saying which program it lacks.
import { execSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const forTests = process.argv.includes("--tests");
const run = (command) => execSync(command, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });

const installed = "node_modules/.package-lock.json";
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  console.log("[setup] installing dependencies (npm ci)");
  run("npm ci --no-audit --no-fund");
}

// What tsconfig.json compiles, and what decides how.
const buildInputs = ["src", "test", "examples", "gen", "bench", "tsconfig.json", "package-lock.json"];
const builtStamp = "dist/.built";

/** The newest modification time of a file or of any file below a folder. */
function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs; // a deleted or renamed file changes its folder
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

const upToDate =
  !forTests && existsSync(builtStamp) && statSync(builtStamp).mtimeMs > Math.max(...buildInputs.filter(existsSync).map(newest));
if (upToDate) {
  console.log("[setup] dist/ is up to date with the sources: not rebuilding");
} else {
  rmSync("dist", { recursive: true, force: true });
  console.log("[setup] building dist/ (tsc)");
  run("npx tsc -p tsconfig.json");
  writeFileSync(builtStamp, "");
}

/** Installs the Debian packages whose binaries are missing (as root, with apt-get). */
function installDebian(purpose, wanted) {
  const needed = wanted.filter(([binary]) => !existsSync(binary));
  if (needed.length === 0) return;
  const packages = needed.map(([, pkg]) => pkg).join(" ");
  if (process.env.SKIP_APT) {
    console.log(`[setup] SKIP_APT is set: not installing ${packages}; ${purpose} that need them are skipped (saying which program is missing), or fail`);
  } else if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
    console.log(`[setup] installing Debian packages for ${purpose} (as root, apt-get, SKIP_APT=1 to skip): ${packages}`);
    const install = `apt-get install -y -q --no-install-recommends ${packages}`;
    run(`${install} || (apt-get update -q && ${install})`);
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
    // A real Prometheus scrapes the admin listener (metrics tests); promtool checks the exposition.
    ["/usr/bin/prometheus", "prometheus"],
  ]);
}
