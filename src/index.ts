/**
 * connect-grpc-bridge: Connect clients in front, native gRPC servers behind.
 *
 * - {@link grpcBridge}: a Fastify plugin for an existing gateway.
 * - {@link createBridge}: a Fastify instance with the bridge and nothing else.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { grpcBridge } from "./plugin.js";
import { frontDoorServerFactory, type FrontDoorTls } from "./front-door.js";
import { connectClientErrorHandler } from "./client-error.js";
import type { GrpcBridgeOptions } from "./options.js";
import { connectErrorJson } from "./protocol/error-json.js";
import { Code, ConnectError } from "./protocol/status.js";

export { grpcBridge } from "./plugin.js";
export { rejectCall, Code } from "./reject.js";
export type { GrpcBridgeOptions, BridgeCorsOptions } from "./options.js";
export { frontDoorServerFactory, type FrontDoorTls } from "./front-door.js";
export { connectClientErrorHandler } from "./client-error.js";
export { createCluster, type ClusterLog, type ClusterHooks } from "./upstream/cluster.js";
export type { Lookup } from "./upstream/resolver.js";
export type { ClusterOptions, UpstreamTlsOptions, HealthCheckOptions, RetryOptions } from "./upstream/cluster-options.js";
export type { Upstream, UpstreamRetry, UpstreamStream, UpstreamEndpoint, CallTarget } from "./upstream/upstream.js";
export type { SchemaOptions, ReflectionOptions } from "./schema/schema.js";
export type { ClusterConfigInput, RouteConfig, BridgeConfig } from "./config/schema.js";
export { loadConfig, printConfig, type LoadedConfig } from "./config/load.js";
export { ConfigError } from "./config/validate.js";

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
  const app = Fastify({
    logger: false,
    serverFactory: frontDoorServerFactory(tls),
    clientErrorHandler: connectClientErrorHandler,
    ...fastifyOptions,
  });
  app.register(grpcBridge, bridgeOptions);
  app.setNotFoundHandler((request, reply) => {
    // The plugin's route takes every path for the usual methods; what lands
    // here is a method Fastify does not route (TRACE, PROPFIND, ...).
    const routed = request.method === "GET" || request.method === "POST";
    const body = connectErrorJson(
      routed
        ? new ConnectError(`no procedure at ${request.method} ${request.url}`, Code.Unimplemented)
        : new ConnectError(`HTTP method ${request.method} is not allowed: use POST (or GET for unary calls)`, Code.Unknown),
    );
    if (!routed) reply.header("allow", "GET, POST");
    reply.code(routed ? 404 : 405).type("application/json").send(Buffer.from(body));
  });
  return app;
}
