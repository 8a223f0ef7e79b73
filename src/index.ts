/**
 * connect-grpc-bridge: Connect clients in front, native gRPC servers behind.
 *
 * - {@link grpcBridge}: a Fastify plugin for an existing gateway.
 * - {@link createBridge}: a Fastify instance with the bridge and nothing else.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { lazyQuerystringParser } from "./inbound/lazy-query.js";
import { grpcBridge } from "./plugin.js";
import { frontDoorServerFactory, type FrontDoorTls } from "./front-door.js";
import { connectClientErrorHandler } from "./client-error.js";
import type { GrpcBridgeOptions } from "./options.js";
import { exchangeFor } from "./inbound/exchange.js";
import { classifyRequest, methodNotAllowed, refuse, unknownProcedure } from "./inbound/classify.js";

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
export type { BridgeMetricsOptions, BridgeAdminOptions } from "./options.js";
export type { AdminRoute, AdminResponse } from "./admin/server.js";
export type { ClusterStats, EndpointStats, EndpointState } from "./upstream/stats.js";
export { Lifecycle, type DrainStart } from "./lifecycle.js";

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
    // While closing, a request that arrives on a connection opened before is
    // still a call (answered with Connection: close, ended with unavailable
    // at the drain deadline), not Fastify's 503 JSON, which no gRPC client reads.
    return503OnClosing: false,
    ...fastifyOptions,
    // The bridge reads the raw query itself; Fastify's parse waits until a hook asks.
    routerOptions:
      fastifyOptions?.querystringParser === undefined
        ? { querystringParser: lazyQuerystringParser, ...fastifyOptions?.routerOptions }
        : fastifyOptions.routerOptions,
  });
  app.register(grpcBridge, bridgeOptions);
  app.setNotFoundHandler((request, reply) => {
    // The plugin's route takes every path for the usual methods; what lands
    // here is a method Fastify does not route (TRACE, PROPFIND, ...).
    reply.hijack();
    const classified = classifyRequest(request.raw);
    const routed = request.method === "GET" || request.method === "POST";
    refuse(
      exchangeFor(request, reply),
      classified,
      routed ? unknownProcedure(`no procedure at ${request.method} ${request.url}`) : methodNotAllowed(classified, request.method),
    );
  });
  return app;
}
