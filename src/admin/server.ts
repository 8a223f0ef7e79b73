/**
 * The admin listener: a node:http server on a port of its own, so no RPC
 * path of the data port can be shadowed by it and the data port never
 * answers these paths. What an orchestrator and an operator ask a proxy:
 * is it up (/healthz), should it get traffic (/readyz), its metrics
 * (/metrics), what it runs with (/config) and how its upstreams are
 * (/clusters). Other parts of the bridge add GET paths with `extraRoutes`.
 */
import type * as Http from "node:http";
import { http } from "../node-http.js";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Lifecycle } from "../lifecycle.js";
import type { ClusterStats } from "../upstream/stats.js";
import { redact } from "./redact.js";

/** One more GET path: what it answers, computed per request. */
export type AdminRoute = () => AdminResponse | Promise<AdminResponse>;

export interface AdminResponse {
  readonly contentType: string;
  readonly body: string | Buffer;
  /** Default 200. */
  readonly status?: number;
}

/** A cluster as the admin listener sees it: its stats, when it keeps any. */
export interface AdminCluster {
  readonly name: string;
  /** Undefined for an Upstream of the caller's that keeps no stats (assumed usable). */
  stats(): ClusterStats | undefined;
}

export interface AdminServerOptions {
  readonly port: number;
  readonly host: string;
  readonly lifecycle: Lifecycle;
  /** Served at /metrics; undefined: metrics are off, /metrics says so (404). */
  readonly registry: Registry | undefined;
  /** The effective config, redacted before it is shown. */
  readonly config: unknown;
  readonly clusters: readonly AdminCluster[];
  readonly extraRoutes?: ReadonlyMap<string, AdminRoute> | undefined;
}

const builtIn = ["/healthz", "/readyz", "/metrics", "/config", "/clusters"];

export class AdminServer {
  private readonly server: Http.Server;
  private readonly routes = new Map<string, AdminRoute>();
  private drainReason: string | undefined;

  constructor(private readonly options: AdminServerOptions) {
    options.lifecycle.onDrain(({ reason }) => (this.drainReason = reason));
    this.routes.set("/healthz", () => text(200, "ok\n"));
    this.routes.set("/readyz", () => this.readiness());
    this.routes.set("/metrics", () => this.metrics());
    this.routes.set("/config", () => json(200, redact(options.config)));
    this.routes.set("/clusters", () => json(200, { clusters: this.clusterStats() }));
    for (const [path, route] of options.extraRoutes ?? []) {
      if (this.routes.has(path)) throw new Error(`connect-grpc-bridge: admin route ${path} is built in and cannot be replaced`);
      if (!path.startsWith("/")) throw new Error(`connect-grpc-bridge: admin route "${path}" must start with "/"`);
      this.routes.set(path, route);
    }
    this.server = http.createServer((req, res) => void this.answer(req, res));
    // Probes and scrapes keep connections open; close() must not wait for them.
    this.server.keepAliveTimeout = 5000;
  }

  /** Starts listening; resolves with the URL, e.g. `http://127.0.0.1:9901`. */
  listen(): Promise<string> {
    const { port, host } = this.options;
    return new Promise((resolve, reject) => {
      const failed = (error: Error) =>
        reject(new Error(`connect-grpc-bridge: the admin listener cannot listen on ${host}:${port} (admin.port, --admin-port): ${error.message}`, { cause: error }));
      this.server.once("error", failed);
      this.server.listen(port, host, () => {
        this.server.off("error", failed);
        resolve(this.url);
      });
    });
  }

  /** `http://host:port` of the listening server. */
  get url(): string {
    const address = this.server.address() as AddressInfo;
    return `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  }

  close(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async answer(req: Http.IncomingMessage, res: Http.ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const route = this.routes.get(path);
    let response: AdminResponse;
    if (route === undefined) {
      response = text(404, `no admin endpoint at ${path}; there are ${[...this.routes.keys()].join(", ")}\n`);
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      response = text(405, `${req.method} is not allowed on ${path}: use GET\n`);
    } else {
      try {
        response = await route();
      } catch (error) {
        response = text(500, `${path} failed: ${(error as Error).message}\n`);
      }
    }
    const body = typeof response.body === "string" ? Buffer.from(response.body) : response.body;
    const headers: Http.OutgoingHttpHeaders = {
      "content-type": response.contentType,
      "content-length": body.byteLength,
      "cache-control": "no-store",
    };
    if (response.status === 405) headers.allow = "GET, HEAD";
    res.writeHead(response.status ?? 200, headers);
    res.end(req.method === "HEAD" ? undefined : body);
  }

  /**
   * Ready: the data port listens, no drain started, and every cluster has
   * a usable endpoint. Each reason that fails is named in the body.
   */
  private readiness(): AdminResponse {
    const { lifecycle } = this.options;
    const problems: string[] = [];
    if (lifecycle.draining) problems.push(`draining${this.drainReason === undefined ? "" : ` (${this.drainReason})`}`);
    if (!lifecycle.listening) problems.push("the data port is not listening");
    for (const cluster of this.options.clusters) {
      const stats = cluster.stats();
      if (stats === undefined || stats.endpoints.some((endpoint) => endpoint.state === "usable")) continue;
      const states = stats.endpoints.map((e) => `${e.address} ${e.state}${e.lastError === undefined ? "" : ` (${e.lastError})`}`);
      problems.push(`cluster "${cluster.name}" has no usable endpoint${states.length === 0 ? "" : `: ${states.join("; ")}`}`);
    }
    return problems.length === 0 ? text(200, "ready\n") : text(503, `not ready: ${problems.join("; ")}\n`);
  }

  private async metrics(): Promise<AdminResponse> {
    const { registry } = this.options;
    if (registry === undefined) return text(404, "metrics are off: turn them on with metrics.enabled (--metrics)\n");
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private clusterStats(): unknown[] {
    return this.options.clusters.map((cluster) => cluster.stats() ?? { name: cluster.name, endpoints: null, note: "an Upstream of the host's: no stats" });
  }
}

/** The paths every admin listener serves. */
export const adminPaths: readonly string[] = builtIn;

function text(status: number, body: string): AdminResponse {
  return { status, contentType: "text/plain; charset=utf-8", body };
}

function json(status: number, value: unknown): AdminResponse {
  return { status, contentType: "application/json", body: JSON.stringify(value, null, 2) + "\n" };
}
