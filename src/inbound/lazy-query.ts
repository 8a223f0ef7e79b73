/**
 * A query-string parser for Fastify that parses only when something reads
 * `request.query`. The bridge reads the raw query itself (a Connect GET
 * carries its whole message there), so Fastify's eager parse — decoding a
 * kilobyte of base64 per GET into an object nobody reads — was pure waste:
 * GET cost ~1.7x the CPU of the same call as POST. Host hooks that read
 * `request.query` still see exactly what Fastify's own parser gives.
 */
import { parse } from "fast-querystring";

/** Fastify's `routerOptions.querystringParser`: the parse happens on first use. */
export function lazyQuerystringParser(raw: string): Record<string, unknown> {
  // What Fastify's default does for an empty query, with no Proxy to pay for.
  if (raw.length === 0) return {};
  return new Proxy(parse("") as Record<string, unknown>, new LazyQuery(raw));
}

/**
 * The Proxy's handler: every trap first fills the target with the parsed
 * query (once), then acts on it, so the object behaves as the parsed one
 * in every respect (keys, `in`, descriptors, writes).
 */
class LazyQuery implements ProxyHandler<Record<string, unknown>> {
  private raw: string | undefined;

  constructor(raw: string) {
    this.raw = raw;
  }

  private fill(target: Record<string, unknown>): Record<string, unknown> {
    if (this.raw !== undefined) {
      Object.assign(target, parse(this.raw));
      this.raw = undefined;
    }
    return target;
  }

  get(target: Record<string, unknown>, key: string | symbol, receiver: unknown): unknown {
    return Reflect.get(this.fill(target), key, receiver);
  }
  has(target: Record<string, unknown>, key: string | symbol): boolean {
    return Reflect.has(this.fill(target), key);
  }
  ownKeys(target: Record<string, unknown>): (string | symbol)[] {
    return Reflect.ownKeys(this.fill(target));
  }
  getOwnPropertyDescriptor(target: Record<string, unknown>, key: string | symbol): PropertyDescriptor | undefined {
    return Reflect.getOwnPropertyDescriptor(this.fill(target), key);
  }
  set(target: Record<string, unknown>, key: string | symbol, value: unknown, receiver: unknown): boolean {
    return Reflect.set(this.fill(target), key, value, receiver);
  }
  defineProperty(target: Record<string, unknown>, key: string | symbol, descriptor: PropertyDescriptor): boolean {
    return Reflect.defineProperty(this.fill(target), key, descriptor);
  }
  deleteProperty(target: Record<string, unknown>, key: string | symbol): boolean {
    return Reflect.deleteProperty(this.fill(target), key);
  }
}
