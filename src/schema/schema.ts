/**
 * The bridge's schema: descriptor sets loaded at start, plus (optionally)
 * each upstream's server reflection, fetched lazily and cached per Upstream.
 * Answers one question per JSON call: which method is at this path?
 */
import type { DescMethod, FileRegistry, Registry } from "@bufbuild/protobuf";
import type { Upstream } from "../upstream/upstream.js";
import { MethodIndex } from "./files.js";
import { loadDescriptorSet } from "./descriptor-set.js";
import { fetchReflectedSchema } from "./reflection-client.js";
import { createRegistry } from "@bufbuild/protobuf";

/** Where the bridge finds the protobuf schema it needs to transcode JSON. */
export interface SchemaOptions {
  /**
   * Descriptor sets: file paths or bytes of a `google.protobuf.FileDescriptorSet`
   * (`protoc --include_imports --descriptor_set_out=FILE`) or a buf image
   * (`buf build -o FILE.binpb`). Read once, when the plugin starts.
   */
  descriptorSets?: (string | Uint8Array)[];
  /**
   * Ask the upstream itself, through gRPC server reflection
   * (grpc.reflection.v1, falling back to v1alpha), on first use.
   */
  reflection?: boolean | ReflectionOptions;
  /**
   * Accept Connect GET for every unary method the schema knows. Default:
   * false, only for methods declared `idempotency_level = NO_SIDE_EFFECTS`.
   */
  allowGetForAllMethods?: boolean;
}

export interface ReflectionOptions {
  /** A schema older than this is refetched (in the background) by the next call that uses it. Default: 300000 (5 min). */
  refreshIntervalMs?: number;
  /** How long one reflection exchange may take. Default: 10000. */
  timeoutMs?: number;
  /** Longest wait between attempts after failures (doubling from 1 s). Default: 60000. */
  maxBackoffMs?: number;
  /**
   * A call naming a method the cached schema lacks refetches it (the server
   * may have been redeployed), at most this often. Default: 2000.
   */
  unknownMethodRefetchMs?: number;
}

export type ResolvedReflectionOptions = Required<ReflectionOptions>;

/** What the schema says about one path. */
export type MethodLookup =
  | { kind: "method"; method: DescMethod; types: Registry }
  /** The schema describes the service, but it has no such method. */
  | { kind: "unknown-method" }
  /** The schema says nothing about this service; `note` says why, when reflection failed. */
  | { kind: "not-described"; note?: string };

type Log = (level: "info" | "warn", fields: Record<string, unknown>, message: string) => void;

/** A schema snapshot: its method index and the registry JSON resolves `Any` through. */
class Snapshot {
  readonly index: MethodIndex;
  readonly types: Registry;
  constructor(registries: readonly FileRegistry[]) {
    this.index = new MethodIndex(registries);
    this.types = createRegistry(...registries);
  }
}

/**
 * The schema of one bridge, shared by all its clusters: descriptor sets
 * loaded once, reflection cached per Upstream. Only JSON calls (and GETs)
 * ask it anything.
 */
export class BridgeSchema {
  private readonly fixed: Snapshot | undefined;
  private readonly fixedRegistries: FileRegistry[];
  private readonly reflection: ResolvedReflectionOptions | undefined;
  /** Keyed by Upstream object: one cache per cluster once routing has several. */
  private readonly caches = new WeakMap<Upstream, ReflectionCache>();
  readonly allowGetForAllMethods: boolean;

  /**
   * @param maxResponseMessageBytes largest reflection answer accepted (the bridge's maxResponseBytes).
   */
  constructor(
    options: ResolvedSchemaOptions,
    private readonly log: Log,
    private readonly maxResponseMessageBytes: number,
  ) {
    this.fixedRegistries = options.descriptorSets.map((source, i) => loadDescriptorSet(source, i));
    this.fixed = this.fixedRegistries.length > 0 ? new Snapshot(this.fixedRegistries) : undefined;
    this.reflection = options.reflection;
    this.allowGetForAllMethods = options.allowGetForAllMethods;
  }

  /**
   * The method at `path` for a call to `upstream`. Descriptor sets answer at
   * once; reflection is fetched on first use, and refetched when a path names
   * a method the cached schema does not have (at most every unknownMethodRefetchMs).
   */
  async lookup(upstream: Upstream, path: string): Promise<MethodLookup> {
    const fixed = this.fixed;
    const method = fixed?.index.method(path);
    if (method !== undefined) return { kind: "method", method, types: fixed!.types };
    if (this.reflection === undefined) return fixed?.index.hasServiceOf(path) ? { kind: "unknown-method" } : { kind: "not-described" };
    const cache = this.cacheFor(upstream);
    let snapshot = await cache.current();
    if (snapshot?.index.method(path) === undefined) snapshot = (await cache.afterUnknownPath()) ?? snapshot;
    const found = snapshot?.index.method(path);
    if (found !== undefined) return { kind: "method", method: found, types: snapshot!.types };
    if (snapshot?.index.hasServiceOf(path) || fixed?.index.hasServiceOf(path)) return { kind: "unknown-method" };
    return { kind: "not-described", note: cache.lastError };
  }

  private cacheFor(upstream: Upstream): ReflectionCache {
    let cache = this.caches.get(upstream);
    if (cache === undefined) {
      cache = new ReflectionCache(upstream, this.reflection!, this.fixedRegistries, this.log, this.maxResponseMessageBytes);
      this.caches.set(upstream, cache);
    }
    return cache;
  }
}

const firstBackoffMs = 1000;

/**
 * One upstream's reflected schema. Stale-while-revalidate: a stale schema is
 * still used while a refetch runs in the background; no timers run while
 * the bridge is idle. Failures back off (1 s doubling up to maxBackoffMs);
 * during a backoff, calls do not wait for reflection.
 */
class ReflectionCache {
  private snapshot: Snapshot | undefined;
  private fetchedAt = 0;
  private inflight: Promise<void> | undefined;
  private failures = 0;
  private retryAt = 0;
  /** The last failure, for error messages while there is no schema. */
  lastError: string | undefined;

  constructor(
    private readonly upstream: Upstream,
    private readonly options: ResolvedReflectionOptions,
    private readonly fixed: readonly FileRegistry[],
    private readonly log: Log,
    private readonly maxResponseMessageBytes: number,
  ) {}

  async current(): Promise<Snapshot | undefined> {
    const now = Date.now();
    if (this.snapshot !== undefined) {
      if (now - this.fetchedAt >= this.options.refreshIntervalMs && now >= this.retryAt) void this.refresh();
      return this.snapshot;
    }
    if (now < this.retryAt) return undefined;
    await this.refresh();
    return this.snapshot;
  }

  async afterUnknownPath(): Promise<Snapshot | undefined> {
    const now = Date.now();
    if (this.inflight === undefined && (now - this.fetchedAt < this.options.unknownMethodRefetchMs || now < this.retryAt)) return this.snapshot;
    await this.refresh();
    return this.snapshot;
  }

  private refresh(): Promise<void> {
    this.inflight ??= fetchReflectedSchema(this.upstream, this.options.timeoutMs, this.maxResponseMessageBytes)
      .then(
        (registry) => {
          const first = this.snapshot === undefined;
          this.snapshot = new Snapshot([...this.fixed, registry]);
          this.fetchedAt = Date.now();
          this.failures = 0;
          this.retryAt = 0;
          this.lastError = undefined;
          if (first) {
            this.log("info", { upstream: this.upstream.name, services: this.snapshot.index.serviceCount }, "schema loaded through server reflection");
          }
        },
        (error: Error) => {
          this.failures++;
          const backoff = Math.min(this.options.maxBackoffMs, firstBackoffMs * 2 ** (this.failures - 1));
          this.retryAt = Date.now() + backoff;
          this.lastError = error.message;
          this.log(
            "warn",
            { upstream: this.upstream.name, err: error, retryInMs: backoff, cachedSchema: this.snapshot !== undefined },
            "server reflection failed",
          );
        },
      )
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }
}

/** The `schema` option validated, every default applied (by the config layer, src/config/rules.ts). */
export interface ResolvedSchemaOptions {
  descriptorSets: (string | Uint8Array)[];
  reflection: ResolvedReflectionOptions | undefined;
  allowGetForAllMethods: boolean;
}
