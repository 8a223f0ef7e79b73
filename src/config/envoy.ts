/**
 * Reads an Envoy bootstrap (static_resources: one listener with an
 * http_connection_manager, its routes, and clusters) into the bridge's own
 * config. Every field is either translated, deliberately ignored because it
 * means nothing here (names, stat prefixes, type URLs, the filters the bridge
 * itself replaces), or reported by its JSON path as unsupported: nothing is
 * dropped silently.
 */
type Doc = Record<string, unknown>;

export interface EnvoyImport {
  /** Bridge config (input form: defaults not yet applied). */
  config: Doc;
  /** JSON paths of what the bridge does not support, e.g. `static_resources.clusters[0].circuit_breakers`. */
  unsupported: string[];
}

const hcmType = "envoy.filters.network.http_connection_manager";
/** HTTP filters the bridge is: applying them is what it always does. */
const bridgeFilters = new Set([
  "envoy.filters.http.connect_grpc_bridge",
  "envoy.filters.http.grpc_web",
  "envoy.filters.http.cors",
  "envoy.filters.http.router",
]);

export function fromEnvoy(doc: Doc): EnvoyImport {
  const unsupported: string[] = [];
  const config: Doc = {};
  const reader = new Reader(unsupported);

  reader.only(doc, "", ["static_resources"]);
  const resources = reader.object(doc.static_resources, "static_resources");
  reader.only(resources, "static_resources", ["listeners", "clusters"]);

  const listeners = reader.array(resources.listeners, "static_resources.listeners");
  for (let i = 1; i < listeners.length; i++) unsupported.push(`static_resources.listeners[${i}] (one listener per bridge)`);
  if (listeners[0] !== undefined) readListener(reader, reader.object(listeners[0], "static_resources.listeners[0]"), "static_resources.listeners[0]", config);

  const clusters: Doc[] = [];
  for (const [i, cluster] of reader.array(resources.clusters, "static_resources.clusters").entries()) {
    const path = `static_resources.clusters[${i}]`;
    const converted = readCluster(reader, reader.object(cluster, path), path);
    if (converted !== undefined) clusters.push(converted);
  }
  config.clusters = clusters;
  // A route to a cluster that was skipped (EDS, ...) would fail validation
  // with a confusing message; it is skipped too, and said so.
  const names = new Set(clusters.map((c) => c.name));
  const routes = (config.routes as Doc[] | undefined) ?? [];
  const routeAt = (config.routePaths as string[] | undefined) ?? [];
  delete config.routePaths;
  config.routes = routes.filter((route, i) => {
    if (names.has(route.cluster)) return true;
    unsupported.push(`${routeAt[i]} (routes to cluster "${String(route.cluster)}", which is not imported; route skipped)`);
    return false;
  });
  return { config, unsupported };
}

function readListener(reader: Reader, listener: Doc, at: string, config: Doc): void {
  reader.only(listener, at, ["name", "address", "filter_chains"]);
  const socket = reader.object(reader.object(listener.address, `${at}.address`).socket_address, `${at}.address.socket_address`);
  reader.only(reader.object(listener.address, `${at}.address`), `${at}.address`, ["socket_address"]);
  reader.only(socket, `${at}.address.socket_address`, ["address", "port_value", "protocol"]);
  config.listen = { host: socket.address, port: socket.port_value };

  const chains = reader.array(listener.filter_chains, `${at}.filter_chains`);
  for (let i = 1; i < chains.length; i++) reader.unsupported(`${at}.filter_chains[${i}] (one filter chain)`);
  if (chains[0] === undefined) return;
  const chainAt = `${at}.filter_chains[0]`;
  const chain = reader.object(chains[0], chainAt);
  reader.only(chain, chainAt, ["filters", "transport_socket"]);
  if (chain.transport_socket !== undefined) {
    const tls = readTlsContext(reader, reader.object(chain.transport_socket, `${chainAt}.transport_socket`), `${chainAt}.transport_socket`, "downstream");
    if (tls.certFile !== undefined && tls.keyFile !== undefined) config.tls = { certFile: tls.certFile, keyFile: tls.keyFile };
  }
  for (const [i, filter] of reader.array(chain.filters, `${chainAt}.filters`).entries()) {
    const fAt = `${chainAt}.filters[${i}]`;
    const f = reader.object(filter, fAt);
    if (f.name !== hcmType) {
      reader.unsupported(`${fAt} (${String(f.name)})`);
      continue;
    }
    reader.only(f, fAt, ["name", "typed_config"]);
    readConnectionManager(reader, reader.object(f.typed_config, `${fAt}.typed_config`), `${fAt}.typed_config`, config);
  }
}

function readConnectionManager(reader: Reader, hcm: Doc, at: string, config: Doc): void {
  reader.only(hcm, at, ["@type", "stat_prefix", "codec_type", "route_config", "http_filters"]);
  if (hcm.codec_type !== undefined && hcm.codec_type !== "AUTO") {
    reader.unsupported(`${at}.codec_type (${String(hcm.codec_type)}: the bridge always serves HTTP/1.1 and HTTP/2, like AUTO)`);
  }
  for (const [i, filter] of reader.array(hcm.http_filters, `${at}.http_filters`).entries()) {
    const f = reader.object(filter, `${at}.http_filters[${i}]`);
    if (!bridgeFilters.has(String(f.name))) reader.unsupported(`${at}.http_filters[${i}] (${String(f.name)})`);
    else reader.only(f, `${at}.http_filters[${i}]`, ["name", "typed_config"]);
  }
  const routeConfig = reader.object(hcm.route_config, `${at}.route_config`);
  reader.only(routeConfig, `${at}.route_config`, ["name", "virtual_hosts"]);
  const routes: Doc[] = [];
  const routePaths: string[] = [];
  const hosts = reader.array(routeConfig.virtual_hosts, `${at}.route_config.virtual_hosts`);
  // Envoy picks the most specific virtual host first; with first-match rules
  // that means catch-all ("*") hosts go last.
  const order = hosts.map((_, i) => i).sort((a, b) => Number(isCatchAll(hosts[a])) - Number(isCatchAll(hosts[b])));
  for (const i of order) {
    const vAt = `${at}.route_config.virtual_hosts[${i}]`;
    const vhost = reader.object(hosts[i], vAt);
    reader.only(vhost, vAt, ["name", "domains", "routes", "cors"]);
    const domains = reader.array(vhost.domains, `${vAt}.domains`).map(String);
    const authority = domains.length === 0 || domains.includes("*") ? undefined : domains;
    if (vhost.cors !== undefined) readCors(reader, reader.object(vhost.cors, `${vAt}.cors`), `${vAt}.cors`, config);
    for (const [j, route] of reader.array(vhost.routes, `${vAt}.routes`).entries()) {
      const converted = readRoute(reader, reader.object(route, `${vAt}.routes[${j}]`), `${vAt}.routes[${j}]`);
      if (converted === undefined) continue;
      routes.push(authority === undefined ? converted : { ...converted, authority });
      routePaths.push(`${vAt}.routes[${j}]`);
    }
  }
  config.routes = routes;
  config.routePaths = routePaths;
}

function isCatchAll(vhost: unknown): boolean {
  const domains = (vhost as Doc | undefined)?.domains;
  return !Array.isArray(domains) || domains.length === 0 || domains.includes("*");
}

function readRoute(reader: Reader, route: Doc, at: string): Doc | undefined {
  reader.only(route, at, ["name", "match", "route"]);
  const match = reader.object(route.match, `${at}.match`);
  reader.only(match, `${at}.match`, ["prefix", "path", "grpc"]);
  const action = reader.object(route.route, `${at}.route`);
  reader.only(action, `${at}.route`, ["cluster"]);
  if (match.prefix === undefined && match.path === undefined) {
    reader.unsupported(`${at} (a route without match.prefix or match.path is skipped)`);
    return undefined;
  }
  if (typeof action.cluster !== "string") {
    reader.unsupported(`${at}.route (only route.cluster is supported; this route is skipped)`);
    return undefined;
  }
  const out: Doc = { cluster: action.cluster };
  if (match.path !== undefined) out.path = match.path;
  else if (match.prefix !== "/") out.prefix = match.prefix;
  return out;
}

function readCors(reader: Reader, cors: Doc, at: string, config: Doc): void {
  reader.only(cors, at, ["allow_origin_string_match", "allow_headers", "expose_headers", "max_age", "allow_credentials", "allow_methods"]);
  const origins: string[] = [];
  let any = false;
  for (const [i, m] of reader.array(cors.allow_origin_string_match, `${at}.allow_origin_string_match`).entries()) {
    const matcher = reader.object(m, `${at}.allow_origin_string_match[${i}]`);
    if (typeof matcher.exact === "string") origins.push(matcher.exact);
    else if (matcher.prefix === "*" || (isObject(matcher.safe_regex) && matcher.safe_regex.regex === ".*")) any = true;
    else reader.unsupported(`${at}.allow_origin_string_match[${i}] (only exact origins and "*")`);
  }
  const list = (value: unknown) => (typeof value === "string" ? value.split(",").map((s) => s.trim()).filter(Boolean) : []);
  config.cors = {
    allowedOrigins: any ? "*" : origins,
    allowedHeaders: list(cors.allow_headers),
    exposedHeaders: list(cors.expose_headers),
    ...(cors.max_age === undefined ? {} : { maxAgeSeconds: Number(cors.max_age) }),
    ...(cors.allow_credentials === undefined ? {} : { credentials: cors.allow_credentials === true }),
  };
}

const clusterTypes = new Set(["STATIC", "STRICT_DNS", "LOGICAL_DNS"]);
const lbPolicies: Record<string, string> = { ROUND_ROBIN: "round_robin", LEAST_REQUEST: "least_requests" };
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

function readCluster(reader: Reader, cluster: Doc, at: string): Doc | undefined {
  reader.only(cluster, at, [
    "name", "connect_timeout", "type", "lb_policy", "load_assignment", "typed_extension_protocol_options",
    "http2_protocol_options", "health_checks", "transport_socket", "dns_refresh_rate", "dns_lookup_family",
  ]);
  const out: Doc = { name: cluster.name };
  const type = cluster.type ?? "STATIC";
  if (!clusterTypes.has(String(type))) {
    reader.unsupported(`${at}.type (${String(type)}: only STATIC, STRICT_DNS and LOGICAL_DNS; cluster skipped)`);
    return undefined;
  }
  if (cluster.lb_policy !== undefined) {
    const policy = lbPolicies[String(cluster.lb_policy)];
    if (policy === undefined) reader.unsupported(`${at}.lb_policy (${String(cluster.lb_policy)}: only ROUND_ROBIN and LEAST_REQUEST; round_robin used)`);
    else out.lbPolicy = policy;
  }
  if (cluster.connect_timeout !== undefined) out.connectTimeoutMs = reader.duration(cluster.connect_timeout, `${at}.connect_timeout`);
  if (cluster.dns_refresh_rate !== undefined) out.dnsRefreshMs = reader.duration(cluster.dns_refresh_rate, `${at}.dns_refresh_rate`);
  if (cluster.dns_lookup_family !== undefined && cluster.dns_lookup_family !== "ALL" && cluster.dns_lookup_family !== "AUTO") {
    reader.unsupported(`${at}.dns_lookup_family (${String(cluster.dns_lookup_family)}: every address family is used)`);
  }

  const assignment = reader.object(cluster.load_assignment, `${at}.load_assignment`);
  reader.only(assignment, `${at}.load_assignment`, ["cluster_name", "endpoints"]);
  const endpoints: string[] = [];
  for (const [i, locality] of reader.array(assignment.endpoints, `${at}.load_assignment.endpoints`).entries()) {
    const lAt = `${at}.load_assignment.endpoints[${i}]`;
    const l = reader.object(locality, lAt);
    reader.only(l, lAt, ["lb_endpoints"]);
    for (const [j, lbEndpoint] of reader.array(l.lb_endpoints, `${lAt}.lb_endpoints`).entries()) {
      const eAt = `${lAt}.lb_endpoints[${j}]`;
      const e = reader.object(lbEndpoint, eAt);
      reader.only(e, eAt, ["endpoint"]);
      const endpoint = reader.object(e.endpoint, `${eAt}.endpoint`);
      reader.only(endpoint, `${eAt}.endpoint`, ["address"]);
      const address = reader.object(endpoint.address, `${eAt}.endpoint.address`);
      reader.only(address, `${eAt}.endpoint.address`, ["socket_address"]);
      const socket = reader.object(address.socket_address, `${eAt}.endpoint.address.socket_address`);
      reader.only(socket, `${eAt}.endpoint.address.socket_address`, ["address", "port_value", "protocol"]);
      const host = String(socket.address);
      endpoints.push(`${host.includes(":") ? `[${host}]` : host}:${String(socket.port_value)}`);
    }
  }
  out.endpoints = endpoints;

  if (cluster.http2_protocol_options !== undefined) {
    readHttp2(reader, reader.object(cluster.http2_protocol_options, `${at}.http2_protocol_options`), `${at}.http2_protocol_options`, out);
  }
  if (cluster.typed_extension_protocol_options !== undefined) {
    const tepo = reader.object(cluster.typed_extension_protocol_options, `${at}.typed_extension_protocol_options`);
    reader.only(tepo, `${at}.typed_extension_protocol_options`, [httpOptionsKey]);
    const pAt = `${at}.typed_extension_protocol_options["${httpOptionsKey}"]`;
    const options = reader.object(tepo[httpOptionsKey], pAt);
    reader.only(options, pAt, ["@type", "explicit_http_config"]);
    const explicit = reader.object(options.explicit_http_config, `${pAt}.explicit_http_config`);
    reader.only(explicit, `${pAt}.explicit_http_config`, ["http2_protocol_options"]);
    readHttp2(reader, reader.object(explicit.http2_protocol_options, `${pAt}.explicit_http_config.http2_protocol_options`), `${pAt}.explicit_http_config.http2_protocol_options`, out);
  }

  const checks = reader.array(cluster.health_checks, `${at}.health_checks`);
  for (let i = 1; i < checks.length; i++) reader.unsupported(`${at}.health_checks[${i}] (one health check per cluster)`);
  if (checks[0] !== undefined) {
    const hAt = `${at}.health_checks[0]`;
    const check = reader.object(checks[0], hAt);
    reader.only(check, hAt, ["timeout", "interval", "healthy_threshold", "unhealthy_threshold", "grpc_health_check"]);
    if (check.grpc_health_check === undefined) {
      reader.unsupported(`${hAt} (only grpc_health_check; health checking off)`);
    } else {
      const grpc = reader.object(check.grpc_health_check, `${hAt}.grpc_health_check`);
      reader.only(grpc, `${hAt}.grpc_health_check`, ["service_name"]);
      out.healthCheck = {
        ...(grpc.service_name === undefined ? {} : { service: String(grpc.service_name) }),
        ...(check.interval === undefined ? {} : { intervalMs: reader.duration(check.interval, `${hAt}.interval`) }),
        ...(check.timeout === undefined ? {} : { timeoutMs: reader.duration(check.timeout, `${hAt}.timeout`) }),
        ...(check.healthy_threshold === undefined ? {} : { healthyThreshold: uint(check.healthy_threshold) }),
        ...(check.unhealthy_threshold === undefined ? {} : { unhealthyThreshold: uint(check.unhealthy_threshold) }),
      };
    }
  }

  if (cluster.transport_socket !== undefined) {
    out.tls = readTlsContext(reader, reader.object(cluster.transport_socket, `${at}.transport_socket`), `${at}.transport_socket`, "upstream");
  }
  return out;
}

function readHttp2(reader: Reader, h2: Doc, at: string, out: Doc): void {
  reader.only(h2, at, ["max_concurrent_streams", "connection_keepalive"]);
  if (h2.max_concurrent_streams !== undefined) out.maxStreamsPerConnection = uint(h2.max_concurrent_streams);
  if (h2.connection_keepalive !== undefined) {
    const keepalive = reader.object(h2.connection_keepalive, `${at}.connection_keepalive`);
    reader.only(keepalive, `${at}.connection_keepalive`, ["interval", "timeout"]);
    if (keepalive.interval !== undefined) out.keepaliveIntervalMs = reader.duration(keepalive.interval, `${at}.connection_keepalive.interval`);
    if (keepalive.timeout !== undefined) out.keepaliveTimeoutMs = reader.duration(keepalive.timeout, `${at}.connection_keepalive.timeout`);
  }
}

/** An Envoy TLS transport socket: the upstream form feeds cluster.tls, the downstream form the front door. */
function readTlsContext(reader: Reader, socket: Doc, at: string, side: "upstream" | "downstream"): Doc {
  reader.only(socket, at, ["name", "typed_config"]);
  const cAt = `${at}.typed_config`;
  const context = reader.object(socket.typed_config, cAt);
  reader.only(context, cAt, side === "upstream" ? ["@type", "sni", "common_tls_context"] : ["@type", "common_tls_context"]);
  const out: Doc = {};
  if (typeof context.sni === "string") out.serverName = context.sni;
  const common = reader.object(context.common_tls_context, `${cAt}.common_tls_context`);
  reader.only(common, `${cAt}.common_tls_context`, ["tls_certificates", "validation_context", "alpn_protocols"]);
  const alpn = reader.array(common.alpn_protocols, `${cAt}.common_tls_context.alpn_protocols`);
  if (alpn.some((p) => p !== "h2" && p !== "http/1.1")) reader.unsupported(`${cAt}.common_tls_context.alpn_protocols (the bridge offers h2${side === "downstream" ? " and http/1.1" : ""})`);
  const certs = reader.array(common.tls_certificates, `${cAt}.common_tls_context.tls_certificates`);
  for (let i = 1; i < certs.length; i++) reader.unsupported(`${cAt}.common_tls_context.tls_certificates[${i}] (one certificate)`);
  if (certs[0] !== undefined) {
    const tAt = `${cAt}.common_tls_context.tls_certificates[0]`;
    const cert = reader.object(certs[0], tAt);
    reader.only(cert, tAt, ["certificate_chain", "private_key"]);
    Object.assign(out, reader.dataSource(cert.certificate_chain, `${tAt}.certificate_chain`, "cert", side));
    Object.assign(out, reader.dataSource(cert.private_key, `${tAt}.private_key`, "key", side));
  }
  if (common.validation_context !== undefined) {
    const vAt = `${cAt}.common_tls_context.validation_context`;
    const validation = reader.object(common.validation_context, vAt);
    if (side === "downstream") reader.unsupported(`${vAt} (client certificates are not checked on the front door)`);
    else {
      reader.only(validation, vAt, ["trusted_ca"]);
      Object.assign(out, reader.dataSource(validation.trusted_ca, `${vAt}.trusted_ca`, "ca", side));
    }
  }
  return out;
}

function uint(value: unknown): number {
  return typeof value === "string" && /^\d+$/.test(value) ? Number(value) : (value as number);
}

function isObject(value: unknown): value is Doc {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Walks the document, collecting what it cannot translate. */
class Reader {
  constructor(private readonly list: string[]) {}

  unsupported(what: string): void {
    this.list.push(what);
  }

  /** Reports every key of `node` outside `known`. */
  only(node: Doc, at: string, known: string[]): void {
    for (const key of Object.keys(node)) {
      if (!known.includes(key)) this.list.push(at === "" ? key : /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${at}.${key}` : `${at}["${key}"]`);
    }
  }

  object(value: unknown, at: string): Doc {
    if (value === undefined) return {};
    if (isObject(value)) return value;
    this.list.push(`${at} (expected a mapping)`);
    return {};
  }

  array(value: unknown, at: string): unknown[] {
    if (value === undefined) return [];
    if (Array.isArray(value)) return value;
    this.list.push(`${at} (expected a list)`);
    return [];
  }

  /** Protobuf JSON durations: "0.25s", or { seconds, nanos }. Milliseconds, rounded. */
  duration(value: unknown, at: string): number | undefined {
    if (typeof value === "string") {
      const m = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
      if (m) return Math.round(Number(m[1]) * 1000);
    } else if (isObject(value)) {
      return Math.round(Number(value.seconds ?? 0) * 1000 + Number(value.nanos ?? 0) / 1e6);
    }
    this.list.push(`${at} (${JSON.stringify(value)}: expected a duration like "0.25s")`);
    return undefined;
  }

  /** An Envoy DataSource: a file becomes `<key>File`, an inline string stays inline (front door: files only). */
  dataSource(value: unknown, at: string, key: string, side: "upstream" | "downstream"): Doc {
    const source = this.object(value, at);
    this.only(source, at, ["filename", "inline_string"]);
    if (typeof source.filename === "string") return { [`${key}File`]: source.filename };
    if (typeof source.inline_string === "string") {
      if (side === "upstream") return { [key]: source.inline_string };
      this.list.push(`${at}.inline_string (the front door reads certificate files, to reload them)`);
    }
    return {};
  }
}
