/**
 * The package as a user gets it: `npm pack` of the built tree, installed into
 * a temporary project (dependencies from npm's cache, else the registry), its
 * CLI run from there and the README's Fastify snippet served from there to
 * Connect, gRPC-Web and gRPC clients.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";

const root = new URL("../../../", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  scripts: Record<string, string>;
  [key: string]: unknown;
};
const run = promisify(execFile);

/** The README's "Inside a Fastify gateway" snippet, as written there. */
function readmeSnippet(): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Inside a Fastify gateway"));
  return /```ts\n([\s\S]*?)```/.exec(section)![1]!;
}

interface PackedFile {
  path: string;
}

describe("the packed package, installed elsewhere", () => {
  let dir: string;
  let project: string;
  let files: string[];
  let upstream: RunningServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "bridge-package-"));
    // dist/ is built already (npm test's pretest); the pack must not rebuild it under the other tests.
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: root });
    const packed = (JSON.parse(stdout) as { filename: string; files: PackedFile[] }[])[0]!;
    files = packed.files.map((f) => f.path);
    project = join(dir, "app");
    await run("mkdir", [project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, packed.filename), `fastify@${manifest.dependencies.fastify}`],
      { cwd: project },
    );
    upstream = await startGrpcJsServer();
  });
  after(async () => {
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ships LICENSE and runs no script at install", () => {
    assert.ok(files.includes("LICENSE"));
    assert.equal(readFileSync(join(root, "LICENSE"), "utf8").includes("Apache License"), true);
    assert.equal(manifest.license, "Apache-2.0");
    for (const script of ["preinstall", "install", "postinstall", "prepare"]) assert.equal(manifest.scripts[script], undefined, script);
  });

  it("every source map points at sources the package ships", () => {
    const maps = files.filter((f) => f.endsWith(".map"));
    assert.ok(maps.length > 0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(project, "node_modules/connect-grpc-bridge", map), "utf8")) as { sources: string[] };
      for (const source of sources) {
        const shipped = join(map, "..", source);
        assert.ok(files.includes(shipped), `${map} -> ${shipped}`);
      }
    }
  });

  it("shares @connectrpc/connect and @bufbuild/protobuf with the app (peers: one copy each)", async () => {
    for (const name of Object.keys(manifest.peerDependencies)) {
      const { stdout } = await run("npm", ["ls", name, "--all", "--parseable"], { cwd: project });
      assert.equal(stdout.trim().split("\n").length, 1, `${name}: ${stdout}`);
    }
  });

  it("connect-grpc-bridge --version prints the version; on Node < 22 one line says the runtime is not supported", async () => {
    const { stdout, stderr } = await run(join(project, "node_modules/.bin/connect-grpc-bridge"), ["--version"], {
      env: { ...process.env, PATH: `${join(process.execPath, "..")}:${process.env.PATH}` },
    });
    assert.equal(stdout, `${manifest.version}\n`);
    if (Number(process.versions.node.split(".")[0]) < 22) {
      assert.equal(stderr, `connect-grpc-bridge: Node.js ${process.version} is not supported (end of life); use Node.js 22 or 24\n`);
    } else {
      assert.equal(stderr, "");
    }
  });

  it("its types compile in an app under strict and exactOptionalPropertyTypes, without skipLibCheck", async () => {
    writeFileSync(join(project, "app.ts"), readmeSnippet());
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: ["node"],
          typeRoots: [join(root, "node_modules/@types")],
        },
        files: ["app.ts"],
      }),
    );
    await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", project]).catch((error: { stdout: string }) => {
      assert.fail(error.stdout);
    });
  });

  it("the README's Fastify snippet serves Connect (HTTP/1.1 and HTTP/2), gRPC-Web and gRPC clients", async () => {
    const snippet = readmeSnippet()
      .replace('"http://127.0.0.1:50051"', JSON.stringify(`http://${upstream.address}`))
      .replace("port: 8080", 'port: 0, host: "127.0.0.1"');
    assert.notEqual(snippet, readmeSnippet());
    writeFileSync(join(project, "gateway.mjs"), `${snippet}\nconsole.log("port", app.server.address().port);\n`);
    const gateway: ChildProcess = spawn(process.execPath, ["gateway.mjs"], { cwd: project, stdio: ["ignore", "pipe", "inherit"] });
    try {
      let out = "";
      gateway.stdout!.setEncoding("utf8");
      while (!/port (\d+)\n/.test(out)) {
        const [chunk] = (await Promise.race([once(gateway.stdout!, "data"), once(gateway, "exit")])) as [string | number];
        if (typeof chunk !== "string") assert.fail(`the gateway exited (${chunk}): ${out}`);
        out += chunk;
      }
      const baseUrl = `http://127.0.0.1:${/port (\d+)\n/.exec(out)![1]}`;
      const transports = {
        "Connect, HTTP/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
        "Connect, HTTP/2": createConnectTransport({ baseUrl, httpVersion: "2" }),
        "gRPC-Web, HTTP/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
        "gRPC, HTTP/2": createGrpcTransport({ baseUrl }),
      };
      for (const [name, transport] of Object.entries(transports)) {
        const res = await createClient(TestService, transport).unary({ text: name });
        assert.equal(res.text, name);
      }
    } finally {
      gateway.kill("SIGKILL");
    }
  });
});
