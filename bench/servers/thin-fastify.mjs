// The thin bridge (thin-bridge.mjs) behind Fastify: the same unary proto
// call, but served from a Fastify route the way the bridge's plugin serves
// it (logger off, a content-type parser that reads nothing, reply.hijack(),
// the body read from request.raw). Its gap to thin-bridge.mjs is what
// Fastify itself costs per call: the floor of any Fastify-fronted bridge.
import * as http2 from "node:http2";
import Fastify from "fastify";

const connect = () => {
  const session = http2.connect(`http://${process.env.UPSTREAM ?? "127.0.0.1:50051"}`, {
    settings: { initialWindowSize: 1 << 20 },
  });
  session.on("connect", () => session.setLocalWindowSize(8 << 20));
  session.on("error", () => {});
  const replace = () => {
    if (upstream === session) upstream = connect();
  };
  session.on("goaway", replace);
  session.on("close", replace);
  return session;
};
let upstream = connect();
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
const readNothing = (_request, _payload, done) => done(null);
app.addContentTypeParser("*", readNothing);
app.addContentTypeParser(/^/, readNothing);
app.route({
  method: ["GET", "POST"],
  url: "/*",
  handler: (request, reply) => {
    reply.hijack();
    const req = request.raw;
    const res = reply.raw;
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(body.length, 1);
      if (upstream.closed || upstream.destroyed) upstream = connect();
      const stream = upstream.request({ ":method": "POST", ":path": req.url, "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => res.destroy());
      const out = [];
      stream.on("data", (c) => out.push(c));
      stream.on("end", () => {
        const message = Buffer.concat(out).subarray(5);
        res.writeHead(200, { "content-type": "application/proto", "content-length": message.length });
        res.end(message);
      });
      stream.end(Buffer.concat([header, body]));
    });
  },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1", listenTextResolver: () => "" });
console.log(app.server.address().port);
