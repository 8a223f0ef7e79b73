/**
 * A throwaway self-signed certificate for 127.0.0.1 and localhost, made with
 * the openssl command line (Node has no API to create certificates).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function selfSignedCert(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "bridge-tls-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway CA that signs server and client certificates, made with openssl. */
export interface TestCa {
  /** The CA certificate (PEM): what a peer trusts. */
  cert: Buffer;
  /** A certificate signed by this CA, for `subjectAltName` (e.g. "IP:127.0.0.1,DNS:localhost"). */
  issue(commonName: string, subjectAltName: string, usage: "serverAuth" | "clientAuth"): { key: Buffer; cert: Buffer };
  dispose(): void;
}

export function testCa(name = "bridge test CA"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "bridge-ca-"));
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "ignore", cwd: dir });
  run([
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", "ca-key.pem", "-out", "ca.pem",
  ]);
  let serial = 0;
  return {
    cert: readFileSync(join(dir, "ca.pem")),
    issue(commonName, subjectAltName, usage) {
      const base = `leaf${++serial}`;
      run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${commonName}`, "-keyout", `${base}-key.pem`, "-out", `${base}.csr`]);
      writeFileSync(join(dir, `${base}.ext`), `subjectAltName=${subjectAltName}\nextendedKeyUsage=${usage}\n`);
      run([
        "x509", "-req", "-in", `${base}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
        "-days", "1", "-extfile", `${base}.ext`, "-out", `${base}.pem`,
      ]);
      return { key: readFileSync(join(dir, `${base}-key.pem`)), cert: readFileSync(join(dir, `${base}.pem`)) };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
