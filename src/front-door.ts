/**
 * One listener for every client: HTTP/1.1 and HTTP/2 on the same port, in
 * cleartext (h2c with prior knowledge, told apart by the HTTP/2 connection
 * preface) or over TLS (ALPN "h2" and "http/1.1"). Requests of both versions
 * reach the same Fastify handler, so routing, hooks and plugins apply alike.
 */
import type * as Http from "node:http";
import { http } from "./node-http.js";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import type { FastifyServerFactory } from "fastify";

/** The first bytes of every HTTP/2 connection (RFC 9113 §3.4). */
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface FrontDoorTls {
  key: string | Buffer;
  cert: string | Buffer;
}

/**
 * A Fastify `serverFactory` for the bridge's front door. Unlike Fastify's own
 * `http2: true` server it keeps HTTP/1.1 on a cleartext port, and it sets no
 * session idle timeout: a quiet long-lived stream is a healthy one.
 */
export function frontDoorServerFactory(tls?: FrontDoorTls): FastifyServerFactory {
  return ((handler: Http.RequestListener) => {
    if (tls !== undefined) {
      const server = http2.createSecureServer(
        { key: tls.key, cert: tls.cert, allowHTTP1: true, ALPNProtocols: ["h2", "http/1.1"] },
        handler as never,
      );
      const sessions = trackSessions(server);
      // HTTP/1.1-over-TLS sockets are not sessions; Node 20 has no
      // closeAllConnections on this server, so keep the sockets too.
      const sockets = new Set<Socket>();
      server.on("secureConnection", (socket: Socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      const close = server.close.bind(server);
      server.close = (callback?: (error?: Error) => void) => {
        for (const session of sessions) session.close();
        for (const socket of sockets) if (!("alpnProtocol" in socket) || socket.alpnProtocol !== "h2") closeWhenIdle(socket, true);
        return close(callback);
      };
      Object.assign(server, {
        closeAllConnections: () => {
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        },
      });
      return server;
    }
    const h1 = http.createServer(
      {
        // Streams may last: no whole-request timeout (Node's default is 5 min).
        requestTimeout: 0,
        // Headers must still arrive promptly (slowloris on the request head).
        headersTimeout: 10_000,
      },
      handler,
    );
    // Do not silently drop headers past the 1000th: the 16 KiB header size
    // limit bounds them, and the bridge's own entry limit answers clearly.
    h1.maxHeadersCount = 0;
    h1.keepAliveTimeout = 72_000;
    const h2 = http2.createServer({}, handler as never);
    const sessions = trackSessions(h2);
    // Every connection, from accept on: HTTP/1.1 ones are closed once their
    // response in flight is done; ones still being sniffed (no bytes yet)
    // are known to nobody else, and closeAllConnections must reach them.
    const sockets = new Set<Socket>();
    const h1Listeners = h1.listeners("connection") as ((socket: Socket) => void)[];
    h1.removeAllListeners("connection");
    h1.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      sniff(socket, (isHttp2) => {
        if (isHttp2) {
          // Http2Session reads what sniffing put back from the socket's buffer.
          h2.emit("connection", socket);
        } else {
          for (const listener of h1Listeners) listener.call(h1, socket);
          // Explicitly paused, the socket stays paused when the HTTP/1 parser
          // attaches its 'data' listener.
          socket.resume();
        }
      });
    });
    // Fastify closes the server it was given; HTTP/2 sessions live on ours.
    const close = h1.close.bind(h1);
    h1.close = (callback?: (error?: Error) => void) => {
      for (const session of sessions) session.close();
      // HTTP/2 and unsniffed sockets have no response of node:http: left alone.
      for (const socket of sockets) closeWhenIdle(socket, false);
      return close(callback);
    };
    const closeAll = h1.closeAllConnections.bind(h1);
    h1.closeAllConnections = () => {
      for (const session of sessions) session.destroy();
      closeAll();
      for (const socket of sockets) socket.destroy();
    };
    return h1;
  }) as unknown as FastifyServerFactory;
}

/** What node:http keeps on a socket: the response it is writing, if any. */
type HttpSocket = Socket & { _httpMessage?: Http.ServerResponse | null };

/**
 * Closing the server: an HTTP/1.1 connection ends after the response in
 * flight, not with it. node:http closes idle connections on close() but
 * keeps alive one that becomes idle later (its response was already sent
 * with keep-alive), and the server's close would wait for it forever. A
 * response not started yet says `Connection: close` itself; one started
 * ends its socket once finished. `idleToo`: end idle sockets here (the TLS
 * server has no closeIdleConnections for Fastify to call).
 */
function closeWhenIdle(socket: HttpSocket, idleToo: boolean): void {
  const res = socket._httpMessage;
  if (res == null) {
    if (idleToo) socket.end();
    return;
  }
  if (!res.headersSent) {
    res.setHeader("connection", "close");
    return;
  }
  res.once("finish", () =>
    // node:http detaches the finished response first; a pipelined request may follow.
    setImmediate(() => {
      if (socket._httpMessage == null) socket.end();
      else closeWhenIdle(socket, idleToo);
    }),
  );
}

/** The live HTTP/2 sessions of a server, for closing them with it. */
function trackSessions(server: http2.Http2Server | http2.Http2SecureServer): Set<http2.ServerHttp2Session> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  return sessions;
}

/**
 * Reads just enough of a new connection to know whether it starts with the
 * HTTP/2 preface, then puts the bytes back for whichever server takes it.
 */
function sniff(socket: Socket, route: (isHttp2: boolean) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.byteLength === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.byteLength, preface.byteLength);
    const matches = seen.subarray(0, n).equals(preface.subarray(0, n));
    if (matches && seen.byteLength < preface.byteLength) return; // need more bytes
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.pause();
    socket.unshift(seen);
    route(matches);
  };
  const onEnd = () => socket.destroy();
  // A reset before the first bytes must not become an unhandled 'error'.
  socket.on("error", () => socket.destroy());
  socket.on("data", onData);
  socket.on("end", onEnd);
}
