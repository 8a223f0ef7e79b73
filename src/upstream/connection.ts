/**
 * One HTTP/2 connection to one endpoint, and everything that decides how long
 * it lives: the connect timeout, keepalive PINGs (an unanswered one closes
 * the connection: the peer or the path to it is gone, and streams on it
 * would otherwise hang until TCP notices, minutes later), GOAWAY, and a
 * maximum age. Its owner (the endpoint's pool) hears about the connection
 * becoming ready, failing and closing through callbacks.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { OutgoingHttpHeaders } from "node:http";
import { recordGoaway } from "./retry-safety.js";

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
/** Where a stream's shared 'close' listener finds its connection. */
const connectionOf = Symbol("connection");
type ConnectionStream = http2.ClientHttp2Stream & { [connectionOf]: UpstreamConnection };

export interface ConnectionSettings {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  host: string;
  port: number;
  /** TLS options; undefined means cleartext HTTP/2 (h2c). */
  tls: tls.ConnectionOptions | undefined;
  maxStreams: number;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxConnectionAgeMs: number;
}

export interface ConnectionEvents {
  /** TCP (+TLS) is up and the peer's SETTINGS arrived. */
  onReady(connection: UpstreamConnection): void;
  /** The connection failed; `beforeReady` when it never became ready. */
  onFailure(connection: UpstreamConnection, error: Error, beforeReady: boolean): void;
  /** Stops taking new streams (GOAWAY, age, failure) or closed. */
  onRetired(connection: UpstreamConnection): void;
  /** The peer sent GOAWAY (counted for metrics). */
  onGoaway?(connection: UpstreamConnection): void;
  /**
   * A stream of this connection closed. Told from the connection's own
   * 'close' listener, so that the endpoint's count of streams in flight
   * costs no second listener per call.
   */
  onStreamClosed(connection: UpstreamConnection): void;
}

export class UpstreamConnection {
  readonly session: http2.ClientHttp2Session;
  private readonly socket: net.Socket;
  /** Streams open on this connection. */
  active = 0;
  /** Stream limit: ours, lowered to the peer's MAX_CONCURRENT_STREAMS. */
  limit: number;
  /** False once it must take no new streams. */
  usable = true;
  ready = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private ageTimer: NodeJS.Timeout | undefined;
  private failed = false;
  /**
   * Shared by every stream (`this` is the stream), so that it can read the
   * stream's reset code without a closure per call.
   */
  private static onStreamClose(this: ConnectionStream): void {
    const connection = this[connectionOf];
    connection.active--;
    // A session over its memory budget resets every stream it opens or
    // answers with ENHANCE_YOUR_CALM, as does a peer that finds us abusive:
    // either way later calls need another connection.
    if (this.rstCode === NGHTTP2_ENHANCE_YOUR_CALM && connection.usable) connection.stopTakingStreams();
    connection.events.onStreamClosed(connection);
    // A retired connection is dropped once idle, but only after this
    // stream's other 'close' listeners: dropped now, it would make the
    // attempt read a reset of its last stream as a lost connection.
    if (connection.active === 0 && !connection.usable) setImmediate(UpstreamConnection.dropIfIdle, connection);
  }

  private static dropIfIdle(connection: UpstreamConnection): void {
    if (connection.active === 0) connection.dropIdle();
  }

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly events: ConnectionEvents,
  ) {
    this.limit = settings.maxStreams;
    // Our own socket, so that it can really be closed: after a GOAWAY, Node
    // (v20) marks the session destroyed but leaves the socket half-open
    // until the server closes it, and the session proxy refuses destroy().
    const { host, port } = settings;
    this.socket =
      settings.tls === undefined ? net.connect({ host, port }) : tls.connect({ ...settings.tls, host, port });
    this.socket.on("error", () => {}); // reported through the session
    const session = http2.connect(settings.origin, {
      createConnection: () => this.socket,
      // Large windows keep a single connection from throttling many
      // concurrent streams; per-stream flow control still bounds memory.
      settings: { initialWindowSize: 1 << 20 },
      // Node's per-session budget (10 MB by default) is not a real bound
      // here: it counts request bytes still queued for sending, so 16 calls
      // of 1 MiB at once overflow it, and (Node 20 and 24 here) the unsent
      // bytes of a stream we cancel stay counted for the session's life.
      // Once over, every stream it opens or answers is reset with
      // ENHANCE_YOUR_CALM: a burst of client disconnects wedged the
      // connection for good, RSS flat. The bridge's own limits bound that
      // memory (maxRequestBytes per call, maxStreamsPerConnection,
      // flow-control windows), so the budget is set out of their way (MB).
      maxSessionMemory: 1 << 16,
    });
    this.session = session;
    if (settings.connectTimeoutMs > 0) {
      this.connectTimer = setTimeout(
        () => this.fail(new Error(`connect timeout after ${settings.connectTimeoutMs} ms`)),
        settings.connectTimeoutMs,
      );
      this.connectTimer.unref();
    }
    session.on("error", (error: Error) => this.fail(error));
    session.on("goaway", (_code: number, lastStreamId: number) => {
      recordGoaway(session, lastStreamId);
      this.events.onGoaway?.(this);
      this.retire(false);
    });
    // Read once per SETTINGS frame, not per call: the getter crosses into C++.
    // The peer's first SETTINGS is also what makes the connection ready:
    // 'connect' only means TCP (+TLS), and a port that accepts and stays
    // silent is not a gRPC server.
    session.on("remoteSettings", (remote: http2.Settings) => {
      this.limit = Math.min(settings.maxStreams, remote.maxConcurrentStreams ?? Infinity);
      if (!this.ready) this.becomeReady();
    });
    session.on("close", () => {
      this.stopTimers();
      if (!this.ready && !this.failed) {
        // Closed before it was ever ready, without an error event.
        this.failed = true;
        this.usable = false;
        this.events.onFailure(this, new Error("connection closed before it was ready"), true);
      }
      this.retire(false);
    });
  }

  private becomeReady(): void {
    clearTimeout(this.connectTimer);
    this.ready = true;
    this.session.setLocalWindowSize?.(8 << 20);
    this.startKeepalive();
    if (this.settings.maxConnectionAgeMs > 0) {
      this.ageTimer = setTimeout(() => this.retire(true), this.settings.maxConnectionAgeMs);
      this.ageTimer.unref();
    }
    this.events.onReady(this);
  }

  /**
   * Whether a new stream may start here now. A session Node destroyed on a
   * socket error is not usable even before its 'error' event reaches us:
   * Node 24 closes the session's pending streams first (a retry then runs
   * at once), and a stream requested on it fails with "The session has
   * been destroyed".
   */
  get hasRoom(): boolean {
    return this.usable && this.active < this.limit && !this.session.destroyed;
  }

  /** Starts a stream; throws when the session began closing (GOAWAY just arrived). */
  request(headers: OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const stream = this.session.request(headers) as ConnectionStream;
    this.active++;
    stream[connectionOf] = this;
    // `on`, not `once`: 'close' comes once anyway, and once's wrapper, removed
    // while the stream's close listeners run, makes Node copy that list.
    stream.on("close", UpstreamConnection.onStreamClose);
    return stream;
  }

  /** No new streams; in-flight ones finish. `close` also ends the connection once they have. */
  retire(close: boolean): void {
    this.stopTakingStreams();
    if (close && !this.session.closed && !this.session.destroyed) this.session.close();
    if (this.active === 0) this.dropIdle();
  }

  private stopTakingStreams(): void {
    if (this.usable) {
      this.usable = false;
      this.events.onRetired(this);
    }
  }

  /**
   * A retired connection whose last stream ended is of no further use.
   * Destroyed, not closed: after a GOAWAY Node marks the session closing but
   * (v20) keeps the socket open once its streams are done.
   */
  private dropIdle(): void {
    if (!this.session.destroyed) this.session.destroy();
    this.socket.destroy();
  }

  /** Closes the connection: graceful (in-flight streams finish) unless forced. */
  close(force: boolean): Promise<void> {
    this.stopTimers();
    if (this.session.destroyed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.session.once("close", () => resolve()));
    // Graceful: retired, it is dropped when its last stream ends (at once if idle).
    if (force) this.dropIdle();
    else this.retire(false);
    return closed;
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = true;
    const beforeReady = !this.ready;
    this.stopTimers();
    this.retire(false);
    if (!this.session.destroyed) this.session.destroy(error);
    this.socket.destroy();
    this.events.onFailure(this, error, beforeReady);
  }

  private startKeepalive(): void {
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.settings;
    if (keepaliveIntervalMs <= 0) return;
    this.keepaliveTimer = setInterval(() => {
      // Only while calls are open, like gRPC's default (keepalive without
      // calls off): servers count PINGs on idle connections as abuse
      // (grpc-go answers GOAWAY "too_many_pings"), and an idle connection
      // that died costs nothing until a call uses it, when pings resume.
      if (this.active === 0 || this.pingTimer !== undefined || this.session.destroyed) return;
      this.pingTimer = setTimeout(
        () => this.fail(new Error(`keepalive PING unanswered for ${keepaliveTimeoutMs} ms`)),
        keepaliveTimeoutMs,
      );
      this.pingTimer.unref();
      try {
        this.session.ping((error) => {
          clearTimeout(this.pingTimer);
          this.pingTimer = undefined;
          // A PING cancelled by the connection closing is not a failure of its own.
          void error;
        });
      } catch {
        // Too many unacknowledged PINGs or closing: the timer decides.
      }
    }, keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  private stopTimers(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.pingTimer);
    clearTimeout(this.ageTimer);
    this.pingTimer = undefined;
  }
}
