/**
 * A cluster: the replicas behind one name, as one Upstream.
 *
 * PLACEHOLDER so the configuration and routing work can build on the final
 * signature: today it sends every call to the first endpoint over h2c, with
 * the existing UpstreamSession. The upstream-cluster work replaces the body
 * (endpoints, DNS, balancing, health, keepalive, TLS, retries); the
 * signature stays.
 */
import type { FastifyBaseLogger } from "fastify";
import type { ClusterOptions } from "./cluster-options.js";
import type { Upstream } from "./upstream.js";
import { UpstreamSession } from "./session.js";
import { parseUpstreamTarget } from "./target.js";

/** What a cluster logs with: the host app's Fastify logger, or any pino-like one. */
export type ClusterLog = Pick<FastifyBaseLogger, "debug" | "info" | "warn" | "error">;

export function createCluster(options: ClusterOptions, log: ClusterLog): Upstream {
  const target = parseUpstreamTarget(options.endpoints[0]!);
  const session = new UpstreamSession(
    { origin: target.origin, authority: options.authority },
    (error) => log.warn({ err: error, cluster: options.name }, "upstream connection error"),
    options.maxStreamsPerConnection,
  );
  return session;
}
