// A minimal gRPC echo server on node:http2 (h2c): cheap enough that a
// benchmark measures the bridge, not the upstream. Echoes the request frames
// back and ends with grpc-status 0. Prints its port on stdout.
import * as http2 from "node:http2";

const server = http2.createServer();
server.on("stream", (stream) => {
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
  stream.on("error", () => {});
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(server.address().port);
});
