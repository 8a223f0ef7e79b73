// The thin bridge (thin-bridge.mjs) behind Fastify: the same unary proto
// call, but served from a Fastify route the way the bridge's plugin serves
// it (logger off, a content-type parser that reads nothing, reply.hijack(),
// the body read from request.raw). Its gap to thin-bridge.mjs is what
// Fastify itself costs per call: the floor of any Fastify-fronted bridge.
import Fastify from "fastify";
import { unaryCall } from "./thin-upstream.mjs";

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
    unaryCall(request.raw, reply.raw);
  },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1", listenTextResolver: () => "" });
console.log(app.server.address().port);
