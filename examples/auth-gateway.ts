/**
 * Embedding the bridge in an existing Fastify gateway: the host's own hooks
 * run for bridged calls. Here an onRequest hook demands a bearer token and
 * rejects other calls with `unauthenticated`, in the caller's own protocol.
 *
 *   node dist/examples/auth-gateway.js 127.0.0.1:50051
 */
import Fastify, { type FastifyInstance } from "fastify";
import { Code, frontDoorServerFactory, grpcBridge, rejectCall } from "../src/index.js";

export function buildGateway(upstream: string, token = "demo-token"): FastifyInstance {
  // HTTP/1.1 and HTTP/2 (h2c) on one port, so native gRPC clients can use it too.
  const app = Fastify({ serverFactory: frontDoorServerFactory() });
  app.get("/healthz", async () => ({ ok: true }));
  app.register(async (api) => {
    api.addHook("onRequest", async (request, reply) => {
      if (request.headers.authorization !== `Bearer ${token}`) {
        // Answered in the caller's protocol: Connect, gRPC-Web or gRPC.
        rejectCall(request, reply, Code.Unauthenticated, "missing or wrong bearer token");
      }
    });
    api.addHook("preHandler", async (request, reply) => {
      // Headers the host sets on the reply are part of every bridged response.
      reply.header("x-request-id", request.id);
    });
    await api.register(grpcBridge, { upstream });
  });
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const upstream = process.argv[2] ?? "127.0.0.1:50051";
  const app = buildGateway(upstream);
  await app.listen({ port: Number(process.env.PORT ?? 8080) });
  process.stdout.write(`gateway listening on http://127.0.0.1:${process.env.PORT ?? 8080} -> ${upstream}\n`);
}
