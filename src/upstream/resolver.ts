/**
 * Turns a cluster's endpoint list into addresses to connect to, like gRPC's
 * `dns:///` resolver: IP literals are used as they are; hostnames are looked
 * up (every address they have becomes an endpoint) and looked up again every
 * `refreshMs`, so that replicas added to or removed from DNS join or leave
 * the cluster. Until the first lookup answers, a hostname is dialled by name
 * (Node resolves it), so a cluster takes calls from the moment it exists.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";

/** Every address of a hostname; tests inject their own. */
export type Lookup = (hostname: string) => Promise<string[]>;

export const systemLookup: Lookup = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

/** One address to connect to. */
export interface ResolvedAddress {
  /** Connects to this host (an IP, or a hostname not yet resolved). */
  host: string;
  port: number;
  /** The hostname it came from (for TLS server names), if any. */
  hostname: string | undefined;
}

interface Spec {
  host: string;
  port: number;
}

/** `host:port` or `[v6]:port`; throws naming the value. */
export function parseEndpoint(value: string, cluster: string): Spec {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new TypeError(`cluster "${cluster}": invalid endpoint "${value}": expected HOST:PORT (IPv6 as [ADDR]:PORT)`);
  }
  return { host: match[1] ?? match[2]!, port };
}

/** `host:port`, bracketing IPv6. */
export function addressKey(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export class Resolver {
  private readonly specs: Spec[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Last answer per hostname, kept when a later lookup fails. */
  private readonly known = new Map<string, string[]>();

  constructor(
    endpoints: readonly string[],
    private readonly cluster: string,
    private readonly lookup: Lookup,
    private readonly refreshMs: number,
    private readonly onUpdate: (addresses: Map<string, ResolvedAddress>) => void,
    private readonly onError: (hostname: string, error: Error) => void,
  ) {
    this.specs = endpoints.map((value) => parseEndpoint(value, cluster));
  }

  /** Whether any endpoint needs DNS at all. */
  get dynamic(): boolean {
    return this.specs.some((spec) => isIP(spec.host) === 0);
  }

  /** The addresses known now (hostnames not yet looked up are dialled by name). */
  current(): Map<string, ResolvedAddress> {
    const addresses = new Map<string, ResolvedAddress>();
    for (const spec of this.specs) {
      if (isIP(spec.host) !== 0) {
        addresses.set(addressKey(spec.host, spec.port), { host: spec.host, port: spec.port, hostname: undefined });
        continue;
      }
      const resolved = this.known.get(spec.host);
      for (const host of resolved ?? [spec.host]) {
        addresses.set(addressKey(host, spec.port), { host, port: spec.port, hostname: spec.host });
      }
    }
    return addresses;
  }

  /** Looks hostnames up now and then every `refreshMs`. */
  start(): void {
    if (!this.dynamic) return;
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One round of lookups; publishes the result. */
  async refresh(): Promise<void> {
    const hostnames = [...new Set(this.specs.filter((s) => isIP(s.host) === 0).map((s) => s.host))];
    await Promise.all(
      hostnames.map(async (hostname) => {
        try {
          const addresses = await this.lookup(hostname);
          if (addresses.length === 0) throw new Error("no addresses");
          this.known.set(hostname, addresses);
        } catch (error) {
          // Keep the previous answer: a DNS hiccup must not empty the cluster.
          this.onError(hostname, new Error(`cluster "${this.cluster}": DNS lookup of "${hostname}" failed: ${(error as Error).message}`));
        }
      }),
    );
    if (this.stopped) return;
    this.onUpdate(this.current());
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }
}
