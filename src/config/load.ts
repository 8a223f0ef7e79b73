/**
 * The effective configuration of a bridge process: a config file (YAML or
 * JSON) or an Envoy bootstrap, then environment variables, then command-line
 * flags, each overriding the one before; validated once, against the one
 * schema, with defaults applied.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseUpstreamTarget } from "../upstream/target.js";
import { BridgeConfigSchema, type BridgeConfig } from "./schema.js";
import { ConfigError, configLine, show, validate } from "./validate.js";
import { deploymentOf, type Deployment } from "./deployment.js";
import { completeSchemaSources, corsIssues } from "./rules.js";
import { fromEnvoy } from "./envoy.js";

/** Prefix of every environment variable the bridge reads. */
export const envPrefix = "CONNECT_GRPC_BRIDGE_";

type Kind = "string" | "int" | "number" | "list" | "bool";

/** A setting both a flag and an environment variable can give. */
interface Setting {
  flag: string;
  env: string;
  /** Where it lands in the config; undefined for the special cases below. */
  path: string[] | undefined;
  kind: Kind;
}

/** Every flag/env setting, in one table so the README, --help and this stay in step. */
export const settings: readonly Setting[] = [
  { flag: "upstream", env: "UPSTREAM", path: ["upstream"], kind: "string" },
  { flag: "host", env: "HOST", path: ["listen", "host"], kind: "string" },
  { flag: "port", env: "PORT", path: ["listen", "port"], kind: "int" },
  { flag: "tls-cert", env: "TLS_CERT", path: ["tls", "certFile"], kind: "string" },
  { flag: "tls-key", env: "TLS_KEY", path: ["tls", "keyFile"], kind: "string" },
  { flag: "max-request-bytes", env: "MAX_REQUEST_BYTES", path: ["maxRequestBytes"], kind: "int" },
  { flag: "max-response-bytes", env: "MAX_RESPONSE_BYTES", path: ["maxResponseBytes"], kind: "int" },
  { flag: "log-level", env: "LOG_LEVEL", path: ["logLevel"], kind: "string" },
  { flag: "workers", env: "WORKERS", path: ["workers"], kind: "int" },
  { flag: "drain-delay-ms", env: "DRAIN_DELAY_MS", path: ["drainDelayMs"], kind: "int" },
  { flag: "drain-timeout-ms", env: "DRAIN_TIMEOUT_MS", path: ["drainTimeoutMs"], kind: "int" },
  { flag: "descriptor-set", env: "DESCRIPTOR_SETS", path: ["schema", "descriptorSets"], kind: "list" },
  { flag: "reflection", env: "REFLECTION", path: ["schema", "reflection"], kind: "bool" },
  { flag: "reflection-passthrough", env: "REFLECTION_PASSTHROUGH", path: ["reflectionPassthrough"], kind: "bool" },
  { flag: "rest", env: "REST", path: ["rest", "enabled"], kind: "bool" },
  { flag: "openapi-path", env: "OPENAPI_PATH", path: ["openapi", "path"], kind: "string" },
  { flag: "openapi-on", env: "OPENAPI_ON", path: ["openapi", "on"], kind: "string" },
  { flag: "cors-origin", env: "CORS_ORIGIN", path: undefined, kind: "list" },
  { flag: "cors-allow-header", env: "CORS_ALLOW_HEADER", path: undefined, kind: "list" },
  { flag: "access-log", env: "ACCESS_LOG", path: ["accessLog", "enabled"], kind: "bool" },
  { flag: "access-log-success-sample-ratio", env: "ACCESS_LOG_SUCCESS_SAMPLE_RATIO", path: ["accessLog", "successSampleRatio"], kind: "number" },
  { flag: "tracing", env: "TRACING", path: ["tracing", "enabled"], kind: "bool" },
  { flag: "otlp-url", env: "OTLP_URL", path: ["tracing", "exporter", "otlp", "url"], kind: "string" },
  { flag: "trace-sample-ratio", env: "TRACE_SAMPLE_RATIO", path: ["tracing", "sampleRatio"], kind: "number" },
  { flag: "trace-service-name", env: "TRACE_SERVICE_NAME", path: ["tracing", "serviceName"], kind: "string" },
  { flag: "metrics", env: "METRICS", path: ["metrics", "enabled"], kind: "bool" },
  { flag: "admin-port", env: "ADMIN_PORT", path: ["admin", "port"], kind: "int" },
  { flag: "admin-host", env: "ADMIN_HOST", path: ["admin", "host"], kind: "string" },
];

/** Flag values as node:util parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface LoadedConfig {
  /** Validated, defaults applied: what `--print-config` prints. */
  config: BridgeConfig;
  /** Clusters and routes ready for the plugin; undefined with `upstream`. */
  deployment: Deployment | undefined;
  /** Things read but not applied (Envoy fields the bridge does not support), as JSON paths. */
  unsupported: string[];
}

const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/**
 * Builds the effective config from `--config FILE` / `--from-envoy FILE`
 * (or CONNECT_GRPC_BRIDGE_CONFIG / _FROM_ENVOY), the environment and the
 * flags. Throws ConfigError naming the key, the value and what was expected
 * (and which flag or variable set it). Upstream TLS files are read (and
 * their absence reported) unless `readFiles` is false, as for --print-config.
 */
export function loadConfig(flags: FlagValues, env: NodeJS.ProcessEnv, options: { readFiles?: boolean } = {}): LoadedConfig {
  const configFile = str(flags.config) ?? env[`${envPrefix}CONFIG`];
  const envoyFile = str(flags["from-envoy"]) ?? env[`${envPrefix}FROM_ENVOY`];
  if (configFile !== undefined && envoyFile !== undefined) {
    throw new ConfigError([`got both a config file (${configFile}) and an Envoy bootstrap (${envoyFile}); expected one of them`]);
  }
  let base: Record<string, unknown> = {};
  let unsupported: string[] = [];
  if (configFile !== undefined) base = readDocument(configFile, "config file");
  if (envoyFile !== undefined) ({ config: base, unsupported } = fromEnvoy(readDocument(envoyFile, "Envoy bootstrap")));

  // Which flag or variable set a key, to say so when its value is wrong.
  const origins = new Map<string, string>();
  const layers: [string, (s: Setting) => unknown][] = [
    ["environment", (s) => env[envPrefix + s.env]],
    ["flags", (s) => flags[s.flag]],
  ];
  for (const [layer, valueOf] of layers) {
    for (const setting of settings) {
      const raw = valueOf(setting);
      if (raw === undefined) continue;
      const source = layer === "flags" ? `--${setting.flag}` : envPrefix + setting.env;
      const value = typed(raw, setting.kind);
      if (setting.path !== undefined) {
        setPath(base, setting.path, value);
        origins.set(setting.path.join("."), source);
      } else if (setting.flag === "cors-origin") {
        applyCorsOrigins(base, value as string[]);
        origins.set("cors", source);
      } else {
        const cors = (isObject(base.cors) ? base.cors : (base.cors = {})) as Record<string, unknown>;
        cors.allowedHeaders = value;
        origins.set("cors.allowedHeaders", source);
      }
    }
  }
  if (base.cors === undefined || (isObject(base.cors) && base.cors.allowedOrigins === undefined)) {
    // Nobody chose: any origin on a loopback address (local development), off elsewhere.
    const host = isObject(base.listen) && typeof base.listen.host === "string" ? base.listen.host : "127.0.0.1";
    base.cors = { ...(isObject(base.cors) ? base.cors : {}), allowedOrigins: loopback.test(host) ? "*" : [] };
  }

  // The process logs every call unless told not to; the plugin only when asked.
  if (base.accessLog === undefined) base.accessLog = {};

  let config: BridgeConfig;
  let deployment: Deployment | undefined;
  try {
    config = validate<BridgeConfig>(BridgeConfigSchema, base);
    const corsProblems = corsIssues(config.cors, "cors");
    if (corsProblems.length > 0) throw new ConfigError(corsProblems.map(configLine));
    deployment = checkTargets(config, options.readFiles ?? true);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(error.issues.map((line) => withOrigin(line, origins)));
    throw error;
  }
  return { config, deployment, unsupported };
}

/** The effective config as YAML that `--config` accepts, with what was not applied listed on top. */
export function printConfig(loaded: LoadedConfig): string {
  const head = ["# connect-grpc-bridge effective configuration (defaults applied)"];
  if (loaded.unsupported.length > 0) {
    head.push("# Not supported by the bridge, NOT applied:");
    for (const item of loaded.unsupported) head.push(`#   ${item}`);
  }
  // In the schema's order, whatever order the sources set keys in; `schema`
  // completed too (its defaults are applied at start, see rules.ts).
  const ordered: Record<string, unknown> = {};
  const config = { ...loaded.config, schema: completeSchemaSources(loaded.config.schema) };
  for (const key of Object.keys(BridgeConfigSchema.properties)) {
    const value = (config as Record<string, unknown>)[key];
    if (value !== undefined) ordered[key] = value;
  }
  return `${head.join("\n")}\n${yaml().stringify(ordered)}`;
}

function checkTargets(config: BridgeConfig, readFiles: boolean): Deployment | undefined {
  if (config.upstream !== undefined) {
    if (config.clusters.length > 0 || config.routes.length > 0) {
      throw new ConfigError([`upstream: got ${show(config.upstream)} as well as clusters/routes; expected one of them (put the upstream in a cluster)`]);
    }
    try {
      parseUpstreamTarget(config.upstream);
    } catch (error) {
      throw new ConfigError([`upstream: ${(error as Error).message}`]);
    }
    // Filled in for --print-config: what the zero-config upstream means.
    return undefined;
  }
  if (config.clusters.length === 0) {
    throw new ConfigError(["--upstream is required (or a config file with clusters): expected HOST:PORT, e.g. --upstream localhost:50051"]);
  }
  const deployment = deploymentOf(config.clusters, config.routes, "", readFiles);
  // Show the implied defaults too: the authority and the single cluster's route.
  for (const [i, cluster] of config.clusters.entries()) cluster.authority ??= deployment.clusters[i]!.authority;
  config.routes = deployment.routes;
  return deployment;
}

function readDocument(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError([`cannot read the ${what} ${file}: ${(error as Error).message}`]);
  }
  let doc: unknown;
  try {
    // YAML 1.2 is a superset of JSON: one parser reads both.
    doc = yaml().parse(text, { prettyErrors: true });
  } catch (error) {
    throw new ConfigError([`${file}: not valid YAML/JSON: ${(error as Error).message}`]);
  }
  if (!isObject(doc)) throw new ConfigError([`${file}: got ${show(doc)}; expected a mapping of keys at the top level`]);
  return doc;
}

function applyCorsOrigins(base: Record<string, unknown>, origins: string[]): void {
  const cors = isObject(base.cors) ? base.cors : {};
  cors.allowedOrigins = origins.includes("none") ? [] : origins.includes("*") ? "*" : origins;
  base.cors = cors;
}

/** Strings from flags and env become numbers and lists; a bad number stays a string for the schema to name. */
function typed(raw: unknown, kind: Kind): unknown {
  if (kind === "list") {
    const items = Array.isArray(raw) ? raw : String(raw).split(",");
    return items.map((s) => String(s).trim()).filter((s) => s !== "");
  }
  if (kind === "int" && typeof raw === "string" && /^\d+$/.test(raw.trim())) return Number(raw.trim());
  if (kind === "number" && typeof raw === "string" && /^\d*\.?\d+(e-?\d+)?$/i.test(raw.trim())) return Number(raw.trim());
  // Environment variables: true/1 and false/0; anything else stays a string for the schema to name.
  if (kind === "bool" && typeof raw === "string" && /^(true|1|false|0)$/i.test(raw.trim())) return /^(true|1)$/i.test(raw.trim());
  return raw;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function withOrigin(line: string, origins: Map<string, string>): string {
  for (const [path, source] of origins) {
    if (line.startsWith(`${path}:`) || line.startsWith(`${path}.`) || line.startsWith(`${path}[`)) return `${line} (set by ${source})`;
  }
  return line;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * The yaml package, loaded the first time a config file is read or printed:
 * a bridge run from flags alone never holds it, and every module held costs
 * each full GC its share of the live heap. Synchronous (its CommonJS build)
 * because loading a config is.
 */
function yaml(): typeof import("yaml") {
  return (yamlModule ??= createRequire(import.meta.url)("yaml") as typeof import("yaml"));
}
let yamlModule: typeof import("yaml") | undefined;
