/**
 * Which cluster serves a call: ordered rules, first match wins (like Envoy's
 * routes within a virtual host), matched on the procedure path and
 * optionally the `:authority` / Host. A call no rule matches, or one a deny
 * rule matches, has no target.
 *
 * Per call this is one Map lookup: decisions are cached by path (and
 * authority, when any rule looks at it). The cache is bounded, since paths
 * and hosts come from clients.
 */
import type { RouteConfig } from "../config/schema.js";

/** Most cached decisions before the cache starts over. */
const cacheLimit = 4096;

interface CompiledRule<T> {
  /** Path prefix, or the exact path when `exact`. Empty matches everything. */
  match: string;
  exact: boolean;
  hosts: HostPattern[] | undefined;
  /** undefined: deny. */
  target: T | undefined;
}

interface HostPattern {
  kind: "any" | "exact" | "suffix" | "prefix";
  /** Lower-case; for "suffix" ".example.com", for "prefix" "api.example.". */
  text: string;
  /** Whether the pattern names a port (then the request's port must match). */
  withPort: boolean;
}

export class Router<T> {
  private readonly rules: CompiledRule<T>[];
  private readonly byHost: boolean;
  private readonly cache = new Map<string, T | null>();
  private readonly hostCache = new Map<string, Map<string, T | null>>();
  private cached = 0;

  /** `targets` maps each cluster name the routes use to what calls get (checked beforehand). */
  constructor(routes: readonly RouteConfig[], targets: ReadonlyMap<string, T>) {
    this.rules = routes.map((route) => compile(route, targets));
    this.byHost = this.rules.some((r) => r.hosts !== undefined);
  }

  /**
   * The target for `/pkg.Service/Method` called on `authority`, or
   * undefined when no rule matches or the match is a deny rule.
   */
  route(path: string, authority: string | undefined): T | undefined {
    let cache = this.cache;
    if (this.byHost) {
      const host = authority ?? "";
      let perHost = this.hostCache.get(host);
      if (perHost === undefined) {
        this.makeRoom();
        perHost = new Map();
        this.hostCache.set(host, perHost);
      }
      cache = perHost;
    }
    const hit = cache.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const decision = this.decide(path, authority);
    this.makeRoom();
    cache.set(path, decision ?? null);
    this.cached++;
    return decision;
  }

  /**
   * Whether a deny rule (not the absence of one) refuses the call: for
   * refusal metrics only, since both answers are the same. Not cached:
   * asked only for refused calls, with metrics on.
   */
  denies(path: string, authority: string | undefined): boolean {
    for (const rule of this.rules) {
      if (rule.exact ? path !== rule.match : !path.startsWith(rule.match)) continue;
      if (rule.hosts !== undefined && !rule.hosts.some((h) => hostMatches(h, authority))) continue;
      return rule.target === undefined;
    }
    return false;
  }

  private makeRoom(): void {
    if (this.cached < cacheLimit && this.hostCache.size < cacheLimit) return;
    this.cache.clear();
    this.hostCache.clear();
    this.cached = 0;
  }

  private decide(path: string, authority: string | undefined): T | undefined {
    for (const rule of this.rules) {
      if (rule.exact ? path !== rule.match : !path.startsWith(rule.match)) continue;
      if (rule.hosts !== undefined && !rule.hosts.some((h) => hostMatches(h, authority))) continue;
      return rule.target;
    }
    return undefined;
  }
}

function compile<T>(route: RouteConfig, targets: ReadonlyMap<string, T>): CompiledRule<T> {
  const hosts = route.authority === undefined ? undefined : [route.authority].flat().map(hostPattern);
  const target = route.deny === true || route.cluster === undefined ? undefined : targets.get(route.cluster);
  if (route.cluster !== undefined && route.deny !== true && target === undefined) {
    throw new Error(`route to unknown cluster "${route.cluster}"`);
  }
  if (route.path !== undefined) return { match: route.path, exact: true, hosts, target };
  if (route.service !== undefined) return { match: `/${route.service}/`, exact: false, hosts, target };
  return { match: route.prefix ?? "", exact: false, hosts, target };
}

function hostPattern(text: string): HostPattern {
  const lower = text.toLowerCase();
  const withPort = /:\d+$/.test(lower);
  if (lower === "*") return { kind: "any", text: "", withPort: false };
  if (lower.startsWith("*")) return { kind: "suffix", text: lower.slice(1), withPort };
  if (lower.endsWith("*")) return { kind: "prefix", text: lower.slice(0, -1), withPort };
  return { kind: "exact", text: lower, withPort };
}

function hostMatches(pattern: HostPattern, authority: string | undefined): boolean {
  if (pattern.kind === "any") return true;
  if (authority === undefined) return false;
  let host = authority.toLowerCase();
  if (!pattern.withPort) {
    // "api.example.com" matches "api.example.com:8080" too, as Envoy's domains do.
    const colon = host.lastIndexOf(":");
    if (colon > host.lastIndexOf("]")) host = host.slice(0, colon);
  }
  switch (pattern.kind) {
    case "exact":
      return host === pattern.text;
    case "suffix":
      return host.endsWith(pattern.text) && host.length > pattern.text.length;
    case "prefix":
      return host.startsWith(pattern.text) && host.length > pattern.text.length;
  }
}
