/**
 * Embedding the bridge in an existing Fastify gateway: the host's own hooks
 * run for bridged calls. Here an onRequest hook demands a bearer token and
 * rejects other calls with a well-formed Connect error (unauthenticated).
 *
 *   node dist/examples/auth-gateway.js 127.0.0.1:50051
 */
import Fastify, { type FastifyInstance } from "fastify";
import { grpcBridge } from "../src/index.js";

export function buildGateway(upstream: string, token = "demo-token"): FastifyInstance {
  const app = Fastify();
  app.get("/healthz", async () => ({ ok: true }));
  app.register(async (api) => {
    api.addHook("onRequest", async (request, reply) => {
      if (request.headers.authorization !== `Bearer ${token}`) {
        // A Connect error body, so Connect clients surface code "unauthenticated".
        await reply
          .code(401)
          .type("application/json")
          .send(JSON.stringify({ code: "unauthenticated", message: "missing or wrong bearer token" }));
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
