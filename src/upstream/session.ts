/**
 * One reused HTTP/2 session to the upstream. Opening a session per call costs
 * a TCP and SETTINGS round trip and ran at ~0.3x the request rate here, so
 * calls share one connection; a new one is opened lazily when the current one
 * fails, closes, or receives GOAWAY (its in-flight streams finish on it).
 *
 * This is deliberately the simplest pool there is; balancing, several
 * connections and keepalive pings belong to the upstream cluster work.
 */
import * as http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import type { UpstreamTarget } from "./target.js";

export class UpstreamSession {
  private session: http2.ClientHttp2Session | undefined;
  private readonly open = new Set<http2.ClientHttp2Session>();

  constructor(
    readonly target: UpstreamTarget,
    private readonly onError: (error: Error) => void = () => {},
  ) {}

  /** Starts a stream on the shared session, connecting first if needed. */
  request(headers: OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const session = this.current();
    try {
      return session.request(headers);
    } catch (error) {
      // The session began closing between our check and the request (GOAWAY
      // just arrived); one fresh session is the right second attempt.
      this.retire(session);
      return this.current().request(headers);
    }
  }

  private current(): http2.ClientHttp2Session {
    const existing = this.session;
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const session = http2.connect(this.target.origin, {
      // Large windows keep a single connection from throttling many
      // concurrent streams; per-stream flow control still bounds memory.
      settings: { initialWindowSize: 1 << 20 },
    });
    session.on("error", (error: Error) => {
      this.retire(session);
      this.onError(error);
    });
    session.on("goaway", () => this.retire(session));
    session.on("close", () => {
      this.retire(session);
      this.open.delete(session);
    });
    session.on("connect", () => session.setLocalWindowSize?.(8 << 20));
    this.open.add(session);
    this.session = session;
    return session;
  }

  private retire(session: http2.ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }

  /** Closes every session: graceful (in-flight streams finish) unless forced. */
  async close(force = false): Promise<void> {
    const closing = [...this.open].map(
      (session) =>
        new Promise<void>((resolve) => {
          if (session.destroyed) return resolve();
          session.once("close", () => resolve());
          if (force) session.destroy();
          else session.close();
        }),
    );
    this.session = undefined;
    await Promise.all(closing);
  }
}
