/**
 * The admin listener in the plugin's life: started when the app is ready
 * (listen() or ready()), closed with it, and the lifecycle marked
 * listening while the app's server listens.
 */
import type { FastifyInstance } from "fastify";
import type { ResolvedAdminOptions } from "../options.js";
import type { BridgeMetrics } from "../observability/metrics.js";
import type { Upstream } from "../upstream/upstream.js";
import type { Lifecycle } from "../lifecycle.js";
import { AdminServer } from "./server.js";

export function startAdmin(
  fastify: FastifyInstance,
  options: ResolvedAdminOptions,
  lifecycle: Lifecycle,
  metrics: BridgeMetrics | undefined,
  upstreams: readonly Upstream[],
): void {
  const admin = new AdminServer({
    port: options.port,
    host: options.host,
    lifecycle,
    registry: metrics?.registry,
    config: options.config,
    clusters: upstreams.map((upstream) => ({ name: upstream.name, stats: () => upstream.stats?.() })),
    extraRoutes: options.extraRoutes,
  });
  fastify.addHook("onReady", async () => {
    const url = await admin.listen();
    fastify.log.info({ admin: url }, `connect-grpc-bridge admin endpoints at ${url}`);
    options.onListening?.(url);
  });
  fastify.addHook("onListen", async () => {
    lifecycle.listening = true;
  });
  fastify.addHook("preClose", async () => {
    lifecycle.listening = false;
  });
  fastify.addHook("onClose", async () => {
    await admin.close();
  });
}
