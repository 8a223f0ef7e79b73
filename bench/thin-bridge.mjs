// Baseline: the thinnest possible Connect-unary-to-gRPC bridge in Node — a
// plain node:http server and one reused node:http2 session, unary proto only,
// no validation, no error mapping. The ceiling for this architecture.
import * as http from "node:http";
import * as http2 from "node:http2";

const upstream = http2.connect(`http://${process.env.UPSTREAM ?? "127.0.0.1:50051"}`);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(body.length, 1);
    const stream = upstream.request({
      ":method": "POST",
      ":path": req.url,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const out = [];
    stream.on("data", (c) => out.push(c));
    stream.on("end", () => {
      const frame = Buffer.concat(out);
      const message = frame.subarray(5);
      res.writeHead(200, { "content-type": "application/proto", "content-length": message.length });
      res.end(message);
    });
    stream.end(Buffer.concat([header, body]));
  });
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => console.log(server.address().port));
