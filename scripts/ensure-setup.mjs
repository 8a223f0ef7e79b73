// Runs before `npm start` and `npm test` so that each works on a fresh clone:
// installs dependencies when node_modules is missing or older than the lock
// file, rebuilds dist/ from scratch (no stale compiled tests), and, for the
// tests, installs Debian's chromium for the browser test (never a browser
// download from the network: only Debian's package).
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

if (forTests) {
  run("npx tsc -p examples/browser/tsconfig.json");
  if (!existsSync("/usr/bin/chromium")) {
    if (process.getuid?.() === 0 && existsSync("/usr/bin/apt-get")) {
      console.log("[setup] installing Debian's chromium for the browser test");
      run("apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)");
    } else {
      console.log("[setup] /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get): the browser test is skipped, or fails under CI");
    }
  }
}
