/**
 * connect-web in headless Chromium (Debian's package, driven by
 * playwright-core) calling the bridge from another origin, so CORS is real:
 * examples/browser/app.ts over the Connect and gRPC-Web transports, and the
 * same page from an origin the bridge does not allow.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium, type BrowserContext } from "playwright-core";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";

const chromiumPath = "/usr/bin/chromium";
const exampleDir = fileURLToPath(new URL("../../../examples/browser/", import.meta.url));
// Never a browser download: the project installs Debian's chromium (scripts/ensure-setup.mjs).
const skip = !existsSync(chromiumPath) && !process.env.CI ? `${chromiumPath} not installed` : false;

interface Outcome {
  ok: boolean;
  value?: any;
  code?: string;
  message?: string;
}

async function servePage(): Promise<{ server: Server; origin: string }> {
  const bundle = await build({
    entryPoints: [join(exampleDir, "app.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
  });
  const js = bundle.outputFiles[0].contents;
  const html = readFileSync(join(exampleDir, "index.html"));
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/app.js") res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    else if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("connect-web in Chromium through the bridge", { skip }, () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  let allowed: { server: Server; origin: string };
  let blocked: { server: Server; origin: string };
  let browser: BrowserContext;
  let profile: string;

  before(async () => {
    upstream = await startGrpcJsServer();
    allowed = await servePage();
    blocked = await servePage();
    bridge = await startBridge(upstream.address, {
      cors: { allowedOrigins: [allowed.origin], allowedHeaders: ["X-Echo-Page"] },
    });
    profile = mkdtempSync(join(tmpdir(), "bridge-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await bridge?.close();
    await upstream?.close();
    allowed?.server.close();
    blocked?.server.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function runPage(origin: string, text = "from the browser"): Promise<Record<string, Outcome>> {
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/?bridge=${encodeURIComponent(bridge.baseUrl)}&text=${encodeURIComponent(text)}`);
      await page.waitForFunction(() => (window as unknown as { done?: boolean }).done === true, null, { timeout: 20_000 });
      return await page.evaluate(() => (window as unknown as { results: Record<string, Outcome> }).results);
    } finally {
      await page.close();
    }
  }

  it("works from the allowed origin over both transports", async () => {
    const results = await runPage(allowed.origin);
    for (const transport of ["connect", "grpc-web"]) {
      const unary = results[`${transport} unary`];
      assert.deepEqual(unary, { ok: true, value: { text: "from the browser", header: "1" } }, transport);

      const stream = results[`${transport} server stream`];
      assert.ok(stream.ok, `${transport}: ${JSON.stringify(stream)}`);
      assert.equal(stream.value.arrivals.length, 3);
      // Streaming, not buffering: the first message arrived well before the end.
      assert.ok(stream.value.end - stream.value.arrivals[0] >= 200, `${transport}: ${JSON.stringify(stream.value)}`);

      assert.deepEqual(
        results[`${transport} error`],
        { ok: true, value: { code: "PermissionDenied", message: "not you", reason: "test-reason" } },
        transport,
      );
    }
  });

  it("fails from an origin the bridge does not allow", async () => {
    const results = await runPage(blocked.origin, "blocked-origin");
    for (const name of ["connect unary", "grpc-web unary", "connect server stream", "grpc-web server stream"]) {
      assert.equal(results[name].ok, false, name);
    }
    // The preflight failed, so the browser never sent the call itself.
    assert.equal(upstream.observations.metadata.has("blocked-origin"), false);
  });
});
