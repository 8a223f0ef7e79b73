/**
 * A deliberately misbehaving gRPC upstream on node:http2, for the endings a
 * well-behaved server never produces: resets, missing status, wrong content
 * types, truncated frames, silence. The method name picks the fault.
 */
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";

export interface FaultServer {
  address: string;
  /** Reset codes the server's streams were closed with, by method name. */
  resets: Map<string, number>;
  /** Request headers of the last call to each method. */
  requests: Map<string, http2.IncomingHttpHeaders>;
  /** HTTP/2 connections accepted so far. */
  readonly connections: number;
  /** Resolves with the reset code once the stream for `method` has closed. */
  closed(method: string): Promise<number>;
  /** Resolves once a stream for `method` has reached the server. */
  arrived(method: string): Promise<void>;
  close(): Promise<void>;
}

function frame(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([header, payload]);
}

export async function startFaultServer(): Promise<FaultServer> {
  const resets = new Map<string, number>();
  const requests = new Map<string, http2.IncomingHttpHeaders>();
  const waiters = new Map<string, ((code: number) => void)[]>();
  const arrivals = new Map<string, (() => void)[]>();
  const server = http2.createServer();
  let connections = 0;
  server.on("session", () => connections++);
  server.on("stream", (stream, headers) => {
    const method = String(headers[":path"]).split("/").pop() ?? "";
    requests.set(method, headers);
    for (const resolve of arrivals.get(method) ?? []) resolve();
    arrivals.delete(method);
    stream.on("close", () => {
      resets.set(method, stream.rstCode);
      for (const resolve of waiters.get(method) ?? []) resolve(stream.rstCode);
      waiters.delete(method);
    });
    stream.on("error", () => {});
    const grpcHeaders = { ":status": 200, "content-type": "application/grpc" };
    const reset = /^Reset(\w+)$/.exec(method);
    if (reset) {
      const code = (http2.constants as unknown as Record<string, number>)[`NGHTTP2_${reset[1].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()}`];
      // waitForTrailers keeps END_STREAM back: without it close() first ends
      // the stream cleanly and the reset that follows means nothing.
      stream.respond(grpcHeaders, { waitForTrailers: true });
      stream.write(frame(Buffer.from("partial")), () => stream.close(code));
      return;
    }
    switch (method) {
      case "RefuseBeforeHeaders":
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      case "NoStatus":
        stream.respond(grpcHeaders);
        stream.end(frame(Buffer.from("x")));
        return;
      case "Http503":
        stream.respond({ ":status": 503, "content-type": "text/plain" });
        stream.end("overloaded");
        return;
      case "Http404":
        stream.respond({ ":status": 404 }, { endStream: true });
        return;
      case "HtmlContentType":
        stream.respond({ ":status": 200, "content-type": "text/html" });
        stream.end("<html></html>");
        return;
      case "TrailersOnly":
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "7", "grpc-message": "a%20b%25c", "x-meta": "m" },
          { endStream: true },
        );
        return;
      case "MalformedMessage":
        // Not valid percent-encoding: decoding it must not throw.
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "grpc-status": "13", "grpc-message": "bad %zz 100%" },
          { endStream: true },
        );
        return;
      case "TruncatedFrame": {
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        const whole = frame(Buffer.from("abcdef"));
        stream.end(whole.subarray(0, whole.byteLength - 2));
        return;
      }
      case "BadFlags":
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.from([0x80, 0, 0, 0, 1, 0x41]));
        return;
      case "GoawayMidStream":
      case "GoawayErrorMidStream":
      case "KillMidStream":
        // A stream that has started, then the connection goes away under it.
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.write(frame(Buffer.from("first")), () => {
          const session = stream.session!;
          // (session.socket is a guarded proxy; destroy() on the session drops the TCP connection.)
          if (method === "KillMidStream") session.destroy();
          else if (method === "GoawayMidStream") session.close(); // graceful: no new streams, this one may finish
          else session.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR);
          if (method === "GoawayMidStream") {
            stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
            stream.end();
          } else if (method === "GoawayErrorMidStream") {
            session.destroy();
          }
        });
        return;
      case "GoawayThenReset":
        // A graceful GOAWAY, then a reset of the one stream in flight: the
        // stream's own ending, not the connection's (which was orderly).
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.write(frame(Buffer.from("first")), () => {
          // The GOAWAY is queued first, so the client reads it before the reset.
          stream.session!.close();
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        });
        return;
      case "GzipAlways": {
        // Compresses its answer whatever the caller accepts.
        const message = gzipSync(Buffer.from([0x0a, 0x04, 0x7a, 0x69, 0x70, 0x21])); // EchoResponse{text:"zip!"}
        const compressed = frame(message);
        compressed[0] = 1;
        stream.respond({ ...grpcHeaders, "grpc-encoding": "gzip" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.resume();
        stream.end(compressed);
        return;
      }
      case "EmptyMessage":
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.resume();
        stream.end(frame(Buffer.alloc(0)));
        return;
      case "Silent":
        // Never answers; the bridge's deadline must end the call.
        return;
      default:
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    resets,
    requests,
    get connections() {
      return connections;
    },
    closed: (method) =>
      resets.has(method)
        ? Promise.resolve(resets.get(method)!)
        : new Promise((resolve) => waiters.set(method, [...(waiters.get(method) ?? []), resolve])),
    arrived: (method) =>
      requests.has(method)
        ? Promise.resolve()
        : new Promise((resolve) => arrivals.set(method, [...(arrivals.get(method) ?? []), resolve])),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
