/**
 * connect-grpc-bridge: Connect clients in front, native gRPC servers behind.
 *
 * - {@link grpcBridge}: a Fastify plugin for an existing gateway.
 * - {@link createBridge}: a Fastify instance with the bridge and nothing else.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { grpcBridge } from "./plugin.js";
import { frontDoorServerFactory, type FrontDoorTls } from "./front-door.js";
import type { GrpcBridgeOptions } from "./options.js";
import { connectErrorJson } from "./protocol/error-json.js";
import { Code, ConnectError } from "./protocol/status.js";

export { grpcBridge } from "./plugin.js";
export { rejectCall, Code } from "./reject.js";
export type { GrpcBridgeOptions, BridgeCorsOptions } from "./options.js";
export { frontDoorServerFactory, type FrontDoorTls } from "./front-door.js";

export interface CreateBridgeOptions extends GrpcBridgeOptions {
  /** Options for the Fastify instance. Default: `{ logger: false }`. */
  fastify?: FastifyServerOptions;
  /**
   * Serve TLS on the front door (HTTP/2 and HTTP/1.1 by ALPN). Without it the
   * port speaks cleartext HTTP/1.1 and h2c (prior knowledge) at once.
   */
  tls?: FrontDoorTls;
}

/**
 * A Fastify instance that serves only the bridge, ready to `listen()`.
 * Requests that are no call at all (other paths or methods) get Connect
 * errors too, never Fastify's default JSON.
 */
export function createBridge(options: CreateBridgeOptions): FastifyInstance {
  const { fastify: fastifyOptions, tls, ...bridgeOptions } = options;
  const app = Fastify({ logger: false, serverFactory: frontDoorServerFactory(tls), ...fastifyOptions });
  app.register(grpcBridge, bridgeOptions);
  app.setNotFoundHandler((request, reply) => {
    const body = connectErrorJson(
      new ConnectError(`no procedure at ${request.method} ${request.url}`, Code.Unimplemented),
    );
    reply.code(404).type("application/json").send(Buffer.from(body));
  });
  return app;
}
