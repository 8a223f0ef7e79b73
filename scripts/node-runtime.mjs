// Prints the bin/ folder of a Node.js of the given major version (default 24)
// for CI to put first on PATH: the npm registry's node-<platform>-<arch>
// package (a plain binary), packed into node_modules/.cache once and reused.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const major = process.argv[2] ?? "24";
const cache = resolve("node_modules/.cache", `node-${major}`);
const bin = join(cache, "package", "bin");
if (!existsSync(join(bin, "node"))) {
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const spec = `node-${process.platform}-${process.arch}@${major}`;
  // stdout is the answer: npm's own output goes to stderr.
  execFileSync("npm", ["pack", spec, "--silent", "--pack-destination", cache], { stdio: ["ignore", 2, 2] });
  const tarball = readdirSync(cache).find((name) => name.endsWith(".tgz"));
  if (tarball === undefined) throw new Error(`npm pack ${spec} made no tarball in ${cache}`);
  execFileSync("tar", ["-xzf", tarball], { cwd: cache, stdio: ["ignore", 2, 2] });
  rmSync(join(cache, tarball));
}
process.stdout.write(`${bin}\n`);
