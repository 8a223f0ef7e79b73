/**
 * connect-grpc-bridge: Connect clients in front, native gRPC servers behind.
 *
 * - {@link grpcBridge}: a Fastify plugin for an existing gateway.
 * - {@link createBridge}: a Fastify instance with the bridge and nothing else.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { grpcBridge } from "./plugin.js";
import type { GrpcBridgeOptions } from "./options.js";
import { connectErrorJson } from "./protocol/error-json.js";
import { Code, ConnectError } from "./protocol/status.js";

export { grpcBridge } from "./plugin.js";
export type { GrpcBridgeOptions, BridgeCorsOptions } from "./options.js";

export interface CreateBridgeOptions extends GrpcBridgeOptions {
  /** Options for the Fastify instance. Default: `{ logger: false }`. */
  fastify?: FastifyServerOptions;
}

/**
 * A Fastify instance that serves only the bridge, ready to `listen()`.
 * Requests that are no call at all (other paths or methods) get Connect
 * errors too, never Fastify's default JSON.
 */
export function createBridge(options: CreateBridgeOptions): FastifyInstance {
  const { fastify: fastifyOptions, ...bridgeOptions } = options;
  const app = Fastify({ logger: false, ...fastifyOptions });
  app.register(grpcBridge, bridgeOptions);
  app.setNotFoundHandler((request, reply) => {
    const body = connectErrorJson(
      new ConnectError(`no procedure at ${request.method} ${request.url}`, Code.Unimplemented),
    );
    reply.code(404).type("application/json").send(Buffer.from(body));
  });
  return app;
}
