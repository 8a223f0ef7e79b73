/**
 * Certificate rotation on the TLS front door without a restart: new
 * connections get the new certificate, connections already open keep theirs
 * (tls.Server#setSecureContext only affects handshakes to come).
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from "node:fs";
import { createSecureContext, type Server as TlsServer } from "node:tls";
import type { FastifyBaseLogger } from "fastify";

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

export interface CertificateReloader {
  /** Reads both files again and installs them; a bad pair is logged and the old one kept. Returns whether it was installed. */
  reload(reason: string): boolean;
  /** Stops watching the files. */
  close(): void;
}

/**
 * Reloads the certificate when asked (SIGHUP in the CLI) and when either
 * file changes. Files are polled (`fs.watchFile`, every `pollMs`) rather
 * than watched with inotify: certificate managers replace files by rename,
 * which ends an inotify watch on the old file.
 */
export function reloadCertificates(
  server: TlsServer,
  files: CertificateFiles,
  log: Pick<FastifyBaseLogger, "info" | "error">,
  pollMs = 2000,
): CertificateReloader {
  const reload = (reason: string): boolean => {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(files.certFile);
      key = readFileSync(files.keyFile);
      // Checked first: a certificate swapped before its key must not take
      // the front door down; the next change (the key) will complete the pair.
      createSecureContext({ cert, key });
    } catch (error) {
      log.error({ err: error, ...files }, `front-door certificate not reloaded (${reason}): keeping the current one`);
      return false;
    }
    server.setSecureContext({ cert, key });
    log.info({ ...files }, `front-door certificate reloaded (${reason})`);
    return true;
  };
  const onChange = (current: Stats, previous: Stats) => {
    if (current.mtimeMs !== previous.mtimeMs || current.ino !== previous.ino) reload("file changed");
  };
  const options = { interval: pollMs, persistent: false };
  watchFile(files.certFile, options, onChange);
  watchFile(files.keyFile, options, onChange);
  return {
    reload,
    close: () => {
      unwatchFile(files.certFile, onChange);
      unwatchFile(files.keyFile, onChange);
    },
  };
}
