/**
 * A gRPC upstream for flow-control tests, on node:http2: `Flood` writes
 * frames as fast as HTTP/2 flow control lets it, `Sink` never reads its
 * request. Both count bytes, so tests can see how far ahead a producer got.
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

export interface FlowUpstream {
  address: string;
  /** Bytes Flood has handed to HTTP/2 (written and accepted by flow control), over all streams. */
  flooded(): number;
  /** Bytes Sink has read (its application: none, it never reads). */
  sunk(): number;
  /**
   * The latest Sink stream as HTTP/2 sees it: bytes that arrived but sit
   * unread, and how much more the peer may send before a WINDOW_UPDATE,
   * which a stream that does not read never sends.
   */
  sinkState(): { buffered: number; windowLeft: number } | undefined;
  /** Calls `listener` when a Sink stream arrives. */
  onSink(listener: () => void): void;
  /** A PING round trip on the latest Sink stream's connection: the peer has processed what it had queued before it. */
  pingSink(): Promise<void>;
  close(): Promise<void>;
}

export const floodFrameBytes = 64 * 1024;

/** `totalFloodBytes` is what each Flood call sends. */
export async function startFlowUpstream(totalFloodBytes: number): Promise<FlowUpstream> {
  let flooded = 0;
  let sunk = 0;
  let sink: http2.ServerHttp2Stream | undefined;
  const sinkListeners: (() => void)[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const method = String(headers[":path"]).split("/").pop();
    if (method === "Sink") {
      sink = stream;
      stream.pause(); // never reads: the window stays closed
      stream.on("data", (c: Buffer) => (sunk += c.byteLength));
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      for (const listener of sinkListeners) listener();
      return;
    }
    stream.resume();
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    const frame = Buffer.alloc(5 + floodFrameBytes - 5, 7);
    frame[0] = 0;
    frame.writeUInt32BE(floodFrameBytes - 5, 1);
    let sent = 0; // this stream's bytes; `flooded` counts all streams
    const pump = () => {
      while (sent < totalFloodBytes && !stream.destroyed) {
        sent += frame.byteLength;
        flooded += frame.byteLength;
        // write() returning false means HTTP/2 flow control is holding us back.
        if (!stream.write(frame)) return void stream.once("drain", pump);
      }
      if (!stream.destroyed) stream.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    flooded: () => flooded,
    sunk: () => sunk,
    sinkState: () =>
      sink === undefined || sink.destroyed ? undefined : { buffered: sink.readableLength, windowLeft: sink.state.localWindowSize ?? Number.NaN },
    onSink: (listener) => void sinkListeners.push(listener),
    pingSink: () =>
      new Promise<void>((resolve, reject) => {
        if (sink === undefined || sink.session === undefined) return reject(new Error("no Sink stream"));
        sink.session.ping((error) => (error ? reject(error) : resolve()));
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
