/**
 * Front-door certificate rotation: after the files are swapped and the CLI
 * gets SIGHUP (or notices the change), new connections see the new
 * certificate while a connection opened before keeps working.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { once } from "node:events";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGrpcJsServer } from "../support/grpc-js-server.js";
import { selfSignedCert } from "../support/tls.js";
import { runCli } from "../support/cli-process.js";
import { decodeEchoResponse, echoRequest } from "../support/raw-http.js";

/** An HTTP/2 TLS session that trusts exactly `ca`, and the certificate it was shown. */
async function connect(url: string, ca: Buffer): Promise<{ session: http2.ClientHttp2Session; fingerprint: string }> {
  const session = http2.connect(url, { ca, servername: "localhost" });
  await once(session, "connect");
  const socket = session.socket as import("node:tls").TLSSocket;
  return { session, fingerprint: socket.getPeerCertificate().fingerprint256 };
}

/** A Connect unary call on an existing session. */
async function unary(session: http2.ClientHttp2Session, text: string): Promise<string> {
  const stream = session.request({ ":method": "POST", ":path": "/bridge.test.v1.TestService/Unary", "content-type": "application/proto" });
  stream.end(echoRequest({ text }));
  const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  assert.equal(headers[":status"], 200);
  return decodeEchoResponse(Buffer.concat(chunks)).text;
}

/** Replaces a file the way certificate managers do: write aside, rename over. */
function replace(path: string, content: Buffer): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

/** What a test gets: the CLI serving TLS from `certFile`/`keyFile`, first holding `first`. */
interface TlsBridge {
  p: ReturnType<typeof runCli>;
  certFile: string;
  keyFile: string;
  first: { cert: Buffer; key: Buffer };
  /** A TLS session that is closed when the test ends. */
  connect(ca: Buffer): ReturnType<typeof connect>;
}

/** Runs `test` against a CLI bridge serving TLS from files, then tears everything down. */
async function withTlsBridge(test: (bridge: TlsBridge) => Promise<void>): Promise<void> {
  const upstream = await startGrpcJsServer();
  const first = selfSignedCert();
  const dir = mkdtempSync(join(tmpdir(), "bridge-reload-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  writeFileSync(certFile, first.cert);
  writeFileSync(keyFile, first.key);
  const p = runCli(["--upstream", upstream.address, "--port", "0", "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "info"]);
  const sessions: http2.ClientHttp2Session[] = [];
  try {
    const url = await p.listening();
    await test({
      p,
      certFile,
      keyFile,
      first,
      connect: async (ca) => {
        const made = await connect(url, ca);
        sessions.push(made.session);
        return made;
      },
    });
  } finally {
    for (const s of sessions) s.destroy();
    p.child.kill("SIGTERM");
    await p.exited;
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("front-door TLS certificate reload", () => {
  it("SIGHUP: new connections get the new certificate, an open connection keeps working", async () => {
    await withTlsBridge(async ({ p, certFile, keyFile, first, connect }) => {
      const second = selfSignedCert();
      const old = await connect(first.cert);
      assert.equal(old.fingerprint, new X509Certificate(first.cert).fingerprint256);
      assert.equal(await unary(old.session, "before"), "before");

      replace(keyFile, second.key);
      replace(certFile, second.cert);
      p.child.kill("SIGHUP");
      await p.printed(/front-door certificate reloaded/);

      const fresh = await connect(second.cert);
      assert.equal(fresh.fingerprint, new X509Certificate(second.cert).fingerprint256);
      assert.equal(await unary(fresh.session, "new-connection"), "new-connection");
      // The connection made before the reload still carries calls.
      assert.equal(await unary(old.session, "old-connection"), "old-connection");
    });
  });

  it("a change to the files is picked up without a signal", async () => {
    await withTlsBridge(async ({ p, certFile, keyFile, connect }) => {
      const second = selfSignedCert();
      replace(keyFile, second.key);
      replace(certFile, second.cert);
      await p.printed(/"msg":"front-door certificate reloaded \(file changed\)"/);
      const fresh = await connect(second.cert);
      assert.equal(fresh.fingerprint, new X509Certificate(second.cert).fingerprint256);
    });
  });

  it("a certificate that does not match its key is refused and the current one kept", async () => {
    await withTlsBridge(async ({ p, certFile, first, connect }) => {
      const other = selfSignedCert();
      replace(certFile, other.cert); // the key is still the first one's
      p.child.kill("SIGHUP");
      await p.printed(/front-door certificate not reloaded/);
      const after = await connect(first.cert);
      assert.equal(after.fingerprint, new X509Certificate(first.cert).fingerprint256);
      assert.equal(await unary(after.session, "still-served"), "still-served");
    });
  });
});
