/**
 * Reused HTTP/2 connections to one upstream. Opening a session per call costs
 * a TCP and SETTINGS round trip and ran at ~0.3x the request rate here, so
 * calls share a connection until it carries its stream limit; then another
 * is opened. A connection that fails, closes or receives GOAWAY takes no new
 * streams (its in-flight streams finish on it).
 *
 * The zero-config `--upstream HOST:PORT` path. Deliberately simple: several
 * endpoints, balancing, health checks, keepalive pings and retries are the
 * cluster's (cluster.ts, from a config file).
 */
import * as http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import type { UpstreamTarget } from "./target.js";
import type { Upstream } from "./upstream.js";

export class UpstreamSession implements Upstream {
  readonly name: string;
  readonly authority: string;

  /** Connections new streams may go to (not closing, not failed). */
  private usable: http2.ClientHttp2Session[] = [];
  private readonly open = new Set<http2.ClientHttp2Session>();
  private readonly active = new Map<http2.ClientHttp2Session, number>();
  /** Stream limit per connection: ours, lowered to the peer's when it says so. */
  private readonly limit = new Map<http2.ClientHttp2Session, number>();

  constructor(
    readonly target: UpstreamTarget,
    private readonly onError: (error: Error) => void = () => {},
    /** Streams one connection carries before another is opened. */
    private readonly maxStreamsPerConnection = 100,
  ) {
    this.name = target.authority;
    this.authority = target.authority;
  }

  /** Starts a stream on a connection with room for it, connecting if needed. */
  request(headers: OutgoingHttpHeaders): http2.ClientHttp2Stream {
    let session = this.pick();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers);
    } catch (error) {
      // The session began closing between our check and the request (GOAWAY
      // just arrived); one fresh session is the right second attempt.
      this.retire(session);
      session = this.pick();
      stream = session.request(headers);
    }
    this.active.set(session, (this.active.get(session) ?? 0) + 1);
    stream.once("close", () => this.active.set(session, (this.active.get(session) ?? 1) - 1));
    return stream;
  }

  /**
   * The first usable connection below its stream limit — ours, or the
   * peer's MAX_CONCURRENT_STREAMS if lower (past it, Node would queue the
   * stream inside the connection instead of starting it).
   */
  private pick(): http2.ClientHttp2Session {
    for (const session of this.usable) {
      if (session.closed || session.destroyed) continue;
      if ((this.active.get(session) ?? 0) < this.limit.get(session)!) return session;
    }
    return this.connect();
  }

  private connect(): http2.ClientHttp2Session {
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
      this.active.delete(session);
      this.limit.delete(session);
    });
    session.on("connect", () => session.setLocalWindowSize?.(8 << 20));
    // Read once per SETTINGS frame, not per call: the getter crosses into C++.
    session.on("remoteSettings", (settings: http2.Settings) =>
      this.limit.set(session, Math.min(this.maxStreamsPerConnection, settings.maxConcurrentStreams ?? Infinity)),
    );
    this.limit.set(session, this.maxStreamsPerConnection);
    this.open.add(session);
    this.usable.push(session);
    return session;
  }

  /** No new streams go to this connection; its streams in flight finish. */
  private retire(session: http2.ClientHttp2Session): void {
    this.usable = this.usable.filter((s) => s !== session);
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
    this.usable = [];
    await Promise.all(closing);
  }
}
