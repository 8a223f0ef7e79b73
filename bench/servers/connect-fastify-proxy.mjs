// Baseline 3: a schema-based proxy as a Node team would write it today —
// @connectrpc/connect-fastify serving the service, each handler calling the
// upstream through a @connectrpc/connect-node gRPC transport. Every message
// is decoded and re-encoded on both sides. Prints its port.
import { fastify } from "fastify";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TestService } from "../../dist/gen/bridge/test/v1/test_pb.js";

const transport = createGrpcTransport({ baseUrl: `http://${process.env.UPSTREAM ?? "127.0.0.1:50051"}` });
const client = createClient(TestService, transport);
const app = fastify({ logger: false });
await app.register(fastifyConnectPlugin, {
  routes(router) {
    router.service(TestService, {
      unary: (request, context) => client.unary(request, { signal: context.signal }),
      async *serverStream(request, context) {
        const headers = { "x-count": context.requestHeader.get("x-count") ?? "1" };
        yield* client.serverStream(request, { signal: context.signal, headers });
      },
    });
  },
});
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
console.log(app.server.address().port);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
