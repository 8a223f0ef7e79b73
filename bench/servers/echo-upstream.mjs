// A minimal gRPC server on node:http2 (h2c): cheap enough that a benchmark
// measures the bridge, not the upstream. Prints its port on stdout.
//   .../ServerStream  sends the request's frame back `x-count` times (backpressured)
//   .../Hold          sends the request's frame back once, then holds the stream open
//   anything else     echoes the request frames and ends with grpc-status 0
import * as http2 from "node:http2";

const server = http2.createServer({ settings: { maxConcurrentStreams: 100_000 }, maxSessionMemory: 1024 });
server.on("stream", (stream, headers) => {
  const path = headers[":path"];
  const contentType = headers["content-type"] ?? "application/grpc";
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("error", () => {});
  stream.on("end", () => {
    // The caller may be gone already (a bridge stopped mid-run).
    if (stream.destroyed || stream.closed) return;
    const frame = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    if (path.endsWith("/Hold")) {
      stream.respond({ ":status": 200, "content-type": contentType });
      stream.write(frame);
      return;
    }
    stream.respond({ ":status": 200, "content-type": contentType }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    if (!path.endsWith("/ServerStream")) {
      stream.end(frame);
      return;
    }
    let left = Number(headers["x-count"] ?? 1);
    const pump = () => {
      if (stream.destroyed) return;
      while (left > 0) {
        left--;
        if (!stream.write(frame)) return void stream.once("drain", pump);
      }
      stream.end();
    };
    pump();
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(server.address().port);
});
