// Runs before `npm start` and `npm test` so that each works on a fresh clone:
// installs dependencies when node_modules is missing or older than the lock
// file, then rebuilds dist/ from scratch (no stale compiled tests).
import { execSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";

const run = (command) => execSync(command, { stdio: "inherit" });
const installed = "node_modules/.package-lock.json";
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync("package-lock.json").mtimeMs;
if (stale) {
  console.log("[setup] installing dependencies");
  run("npm install --no-audit --no-fund");
}
rmSync("dist", { recursive: true, force: true });
run("npx tsc -p tsconfig.json");
