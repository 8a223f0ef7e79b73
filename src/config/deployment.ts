/**
 * Clusters and routes, from their validated config form to what runs:
 * ClusterOptions for createCluster (every default filled in, TLS files read)
 * and routes checked against the clusters they name. Shared by the CLI and
 * the plugin's `clusters` / `routes` options, so both say the same things
 * about the same mistakes.
 */
import { readFileSync } from "node:fs";
import type { ClusterOptions, UpstreamTlsOptions } from "../upstream/cluster-options.js";
import { ClusterSchema, type ClusterConfig, type ClusterConfigInput, type RouteConfig } from "./schema.js";
import { check, ClustersSchema, ConfigError, configLine, RoutesSchema, show, validate } from "./validate.js";

export interface Deployment {
  clusters: ClusterOptions[];
  routes: RouteConfig[];
}

/**
 * Validates clusters and routes (schema, then the rules a schema cannot say:
 * unique names, routes naming existing clusters, one target per route) and
 * builds ClusterOptions. `root` prefixes key paths in messages ("" for a
 * config file, where the keys are top-level). `readFiles: false` leaves TLS
 * files unread (printing a config for another machine).
 */
export function resolveDeployment(
  clustersInput: readonly ClusterConfigInput[],
  routesInput: readonly RouteConfig[] | undefined,
  root = "",
  readFiles = true,
): Deployment {
  const at = (key: string) => (root === "" ? key : `${root}.${key}`);
  // Copies: ajv fills defaults in place, and the caller's objects stay theirs.
  const clusters = validate<ClusterConfig[]>(ClustersSchema, structuredClone(clustersInput), at("clusters"));
  const routes = validate<RouteConfig[]>(RoutesSchema, structuredClone(routesInput ?? []), at("routes"));
  return deploymentOf(clusters, routes, root, readFiles);
}

/**
 * {@link resolveDeployment} for clusters and routes validated already (as
 * part of a whole config or plugin options): the rules, then ClusterOptions.
 * A single cluster without routes gets its default route added to `routes`.
 */
export function deploymentOf(clusters: ClusterConfig[], routes: RouteConfig[], root = "", readFiles = true): Deployment {
  const at = (key: string) => (root === "" ? key : `${root}.${key}`);
  const issues = [...checkClusters(clusters, at), ...checkRoutes(routes, clusters, at)];
  if (issues.length > 0) throw new ConfigError(issues);
  if (routes.length === 0 && clusters.length === 1) {
    // One cluster and no routes: everything goes there, like --upstream.
    routes.push({ cluster: clusters[0]!.name });
  }
  const options: ClusterOptions[] = [];
  for (const [i, cluster] of clusters.entries()) {
    options.push(clusterOptions(cluster, at(`clusters[${i}]`), readFiles));
  }
  return { clusters: options, routes };
}

/**
 * ClusterOptions for one endpoint with every other key at its default (the
 * schema's): what a zero-config `upstream: "host:port"` amounts to. Throws
 * ConfigError when `endpoint` is no HOST:PORT.
 */
export function defaultClusterOptions(endpoint: string, name = "upstream"): ClusterOptions {
  const cluster = { name, endpoints: [endpoint] };
  const issues = check(ClusterSchema, cluster);
  // Named as the caller knows it: the address is the upstream.
  if (issues !== undefined) throw new ConfigError(issues.map((issue) => configLine({ ...issue, at: issue.at.replace(/^endpoints\[0\]/, "upstream") })));
  return clusterOptions(cluster as ClusterConfig, "upstream", false);
}

function checkClusters(clusters: ClusterConfig[], at: (key: string) => string): string[] {
  const issues: string[] = [];
  const seen = new Map<string, number>();
  for (const [i, cluster] of clusters.entries()) {
    const first = seen.get(cluster.name);
    if (first !== undefined) {
      issues.push(`${at(`clusters[${i}].name`)}: got ${show(cluster.name)}; expected a name not used already (clusters[${first}])`);
    }
    seen.set(cluster.name, i);
    if (cluster.reconnectMaxMs < cluster.reconnectBaseMs) {
      issues.push(`${at(`clusters[${i}].reconnectMaxMs`)}: got ${cluster.reconnectMaxMs}; expected at least reconnectBaseMs (${cluster.reconnectBaseMs})`);
    }
    const tls = cluster.tls;
    if (tls !== undefined) {
      for (const [pem, file] of [["ca", "caFile"], ["cert", "certFile"], ["key", "keyFile"]] as const) {
        if (tls[pem] !== undefined && tls[file] !== undefined) {
          issues.push(`${at(`clusters[${i}].tls`)}: got both ${pem} and ${file}; expected one of them`);
        }
      }
      const hasCert = tls.cert !== undefined || tls.certFile !== undefined;
      const hasKey = tls.key !== undefined || tls.keyFile !== undefined;
      if (hasCert !== hasKey) {
        issues.push(`${at(`clusters[${i}].tls`)}: got ${hasCert ? "a client certificate without a key" : "a client key without a certificate"}; expected both (mTLS) or neither`);
      }
    }
  }
  return issues;
}

function checkRoutes(routes: RouteConfig[], clusters: ClusterConfig[], at: (key: string) => string): string[] {
  const issues: string[] = [];
  const names = clusters.map((c) => c.name);
  for (const [i, route] of routes.entries()) {
    const here = at(`routes[${i}]`);
    const matchers = (["prefix", "path", "service"] as const).filter((k) => route[k] !== undefined);
    if (matchers.length > 1) {
      issues.push(`${here}: got ${matchers.join(" and ")}; expected at most one of prefix, path, service (none matches every call)`);
    }
    if (route.deny === true && route.cluster !== undefined) {
      issues.push(`${here}: got both deny and cluster; expected one of them`);
    } else if (route.deny !== true && route.cluster === undefined) {
      issues.push(`${here}.cluster: missing; expected a cluster name (one of: ${names.join(", ") || "none defined"}) or deny: true`);
    } else if (route.cluster !== undefined && !names.includes(route.cluster)) {
      issues.push(`${here}.cluster: got ${show(route.cluster)}; expected the name of a cluster (one of: ${names.join(", ") || "none defined"})`);
    }
  }
  if (clusters.length > 1 && routes.length === 0) {
    issues.push(`${at("routes")}: got nothing; expected routes when there are several clusters (${names.join(", ")})`);
  }
  return issues;
}

function clusterOptions(cluster: ClusterConfig, at: string, readFiles: boolean): ClusterOptions {
  const first = cluster.endpoints[0]!.replace(/^(?:http|h2c):\/\//, "");
  return {
    name: cluster.name,
    endpoints: cluster.endpoints.map((e) => e.replace(/^(?:http|h2c):\/\//, "")),
    dnsRefreshMs: cluster.dnsRefreshMs,
    authority: cluster.authority ?? first,
    lbPolicy: cluster.lbPolicy,
    tls: cluster.tls === undefined ? undefined : tlsOptions(cluster.tls, `${at}.tls`, readFiles),
    maxStreamsPerConnection: cluster.maxStreamsPerConnection,
    keepaliveIntervalMs: cluster.keepaliveIntervalMs,
    keepaliveTimeoutMs: cluster.keepaliveTimeoutMs,
    maxConnectionAgeMs: cluster.maxConnectionAgeMs,
    connectTimeoutMs: cluster.connectTimeoutMs,
    reconnectBaseMs: cluster.reconnectBaseMs,
    reconnectMaxMs: cluster.reconnectMaxMs,
    healthCheck: cluster.healthCheck === undefined ? undefined : { ...cluster.healthCheck },
    outlierConsecutiveFailures: cluster.outlierConsecutiveFailures,
    outlierEjectionMs: cluster.outlierEjectionMs,
    retry: { ...cluster.retry },
  };
}

function tlsOptions(tls: NonNullable<ClusterConfig["tls"]>, at: string, readFiles: boolean): UpstreamTlsOptions {
  const pem = (inline: string | undefined, file: string | undefined, key: string): string | undefined => {
    if (inline !== undefined || file === undefined || !readFiles) return inline;
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new ConfigError([`${at}.${key}: got ${show(file)}; expected a readable PEM file (${(error as Error).message})`]);
    }
  };
  return {
    ca: pem(tls.ca, tls.caFile, "caFile"),
    serverName: tls.serverName,
    cert: pem(tls.cert, tls.certFile, "certFile"),
    key: pem(tls.key, tls.keyFile, "keyFile"),
    insecureSkipVerify: tls.insecureSkipVerify,
  };
}
