/**
 * Which headers cross the bridge as application metadata, and which belong to
 * one hop or one protocol and must be rewritten or dropped.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** Connection-level headers (RFC 9110 §7.6.1) and HTTP/2-forbidden ones. */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
  "http2-settings",
  "expect",
]);

/** Headers that carry protocol state the bridge translates itself. */
const protocolRequestHeaders = new Set([
  "content-type",
  "content-encoding",
  "accept-encoding",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  // gRPC-Web's marker; the upstream speaks plain gRPC.
  "x-grpc-web",
]);

const protocolResponseHeaders = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "date",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
]);

/**
 * An empty header block for request metadata. A plain object, not a
 * prototype-less one: V8 keeps `Object.create(null)` objects in dictionary
 * mode, and Node's http2 copies and walks the block on every request
 * (prepareRequestHeadersObject took 4x as long). Names such as
 * "constructor" are still plain entries, since every write goes through
 * setHeader and every read of an arbitrary name checks Object.hasOwn.
 */
export function newHeaderBlock(): OutgoingHttpHeaders {
  return {};
}

/**
 * Copies a client's application metadata onto the upstream request headers.
 * Repeated headers stay separate entries instead of being joined with ", "
 * by Node (which would corrupt `-bin` values). Returns a description of the
 * first value gRPC cannot carry (text values must be printable ASCII, `-bin`
 * values base64), or undefined. `connection`: the request's parsed
 * Connection header (`req.headers.connection`, null when it has none), whose
 * tokens name more headers that end at this hop; omitted, it is looked for
 * in rawHeaders.
 *
 * `parsed`: the request's `req.headers`, which Node has built already, with
 * names lower-cased (common ones as shared constant strings). When no name
 * repeats (as many names as raw lines), its entries are the raw ones and are
 * read from there: no toLowerCase of every raw name, no fresh strings to
 * hash for the set lookups. A repeated name takes the raw path, which keeps
 * each value.
 */
export function copyRequestMetadata(
  rawHeaders: string[],
  target: OutgoingHttpHeaders,
  connection?: string | string[] | null,
  parsed?: IncomingHttpHeaders,
): string | undefined {
  // Connection may name further hop-by-hop headers. Node has parsed the
  // header already (req.headers.connection), so the caller passes it and
  // no pass of our own over rawHeaders is needed to find it.
  if (connection === undefined) connection = findConnection(rawHeaders);
  const connectionListed = connection === null ? undefined : connectionListedNames(connection);
  if (parsed !== undefined && distinctNames(parsed) * 2 === rawHeaders.length) {
    return copyDistinct(parsed, target, connectionListed);
  }
  let problem: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (!isMetadataName(name, connectionListed)) continue;
    const value = rawHeaders[i + 1];
    problem ??= valueProblem(name, value);
    appendHeader(target, name, value);
  }
  return problem;
}

function distinctNames(parsed: IncomingHttpHeaders): number {
  let n = 0;
  for (const _ in parsed) n++;
  return n;
}

/** `parsed` holds each header once, as sent: its entries are the metadata. */
function copyDistinct(parsed: IncomingHttpHeaders, target: OutgoingHttpHeaders, connectionListed: Set<string> | undefined): string | undefined {
  let problem: string | undefined;
  for (const name in parsed) {
    if (!isMetadataName(name, connectionListed)) continue;
    const entry = parsed[name]!;
    // Node makes set-cookie a list even when it came once (and here it did).
    const value = typeof entry === "string" ? entry : entry[0];
    problem ??= valueProblem(name, value);
    setHeader(target, name, value);
  }
  return problem;
}

/** Whether a lower-cased request header name is application metadata. */
function isMetadataName(name: string, connectionListed: Set<string> | undefined): boolean {
  // HTTP/2 requests list their pseudo-headers (":path", ...) too.
  if (name.charCodeAt(0) === 58 /* ":" */) return false;
  if (hopByHop.has(name) || protocolRequestHeaders.has(name) || connectionListed?.has(name)) return false;
  return !name.startsWith("trailer-"); // Connect reserves the prefix for response trailers.
}

/** Why gRPC cannot carry this value, or undefined. */
function valueProblem(name: string, value: string): string | undefined {
  if (name.endsWith("-bin")) return isBase64(value) ? undefined : `metadata "${name}" is not valid base64`;
  return printableAscii.test(value) ? undefined : `metadata "${name}" has a value that is not printable ASCII`;
}

/** The Connection header values in rawHeaders, or null: for callers without a parsed request. */
function findConnection(rawHeaders: string[]): string[] | null {
  let values: string[] | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === "connection") (values ??= []).push(rawHeaders[i + 1]);
  }
  return values;
}

/**
 * The names a Connection header lists beyond the hop-by-hop ones, or
 * undefined when it lists none of those (`keep-alive`, `close`: nearly every
 * HTTP/1.1 client's). By value, cached: a client sends one of a few values,
 * and splitting it into a fresh Set was ~1% of a unary call's instructions.
 * Bounded, since the value comes from clients; callers only read the Set.
 */
function connectionListedNames(connection: string | string[]): Set<string> | undefined {
  if (typeof connection !== "string") return connectionTokens(connection);
  const cached = connectionCache.get(connection);
  if (cached !== undefined) return cached ?? undefined;
  const listed = connectionTokens([connection]);
  if (connectionCache.size < maxConnectionCached) connectionCache.set(connection, listed ?? null);
  return listed;
}

/** By Connection value; null: cached, and it lists nothing (one lookup for the common case). */
const connectionCache = new Map<string, Set<string> | null>();
const maxConnectionCached = 64;

function connectionTokens(connection: string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (const value of connection) {
    for (const token of value.split(",")) {
      const name = token.trim().toLowerCase();
      if (!hopByHop.has(name)) (listed ??= new Set()).add(name);
    }
  }
  return listed;
}

const printableAscii = /^[\x20-\x7e]*$/;

/** Standard or URL-safe base64, padded or not; what gRPC accepts in `-bin`. */
function isBase64(value: string): boolean {
  return /^[A-Za-z0-9+/_-]*={0,2}$/.test(value) && value.replace(/=+$/, "").length % 4 !== 1;
}

function appendHeader(target: OutgoingHttpHeaders, name: string, value: string): void {
  const existing = Object.hasOwn(target, name) ? target[name] : undefined;
  if (existing === undefined) setHeader(target, name, value);
  else if (Array.isArray(existing)) existing.push(value);
  else setHeader(target, name, [String(existing), value]);
}

/** Sets an own entry even for names like "__proto__", on any object. */
function setHeader(target: OutgoingHttpHeaders, name: string, value: string | string[]): void {
  if (name === "__proto__") Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  else target[name] = value;
}

/** True if an upstream header or trailer is application metadata. */
export function isResponseMetadata(name: string): boolean {
  return name.charCodeAt(0) !== 58 /* ":" */ && !hopByHop.has(name) && !protocolResponseHeaders.has(name);
}

/**
 * Application metadata of an upstream header or trailer block, with each name
 * optionally prefixed (Connect unary sends trailers as `trailer-` headers).
 */
export function responseMetadata(
  block: IncomingHttpHeaders,
  target: OutgoingHttpHeaders,
  prefix = "",
): OutgoingHttpHeaders {
  for (const name in block) {
    if (!isResponseMetadata(name)) continue;
    const value = block[name];
    if (value !== undefined) setHeader(target, prefix + name, value);
  }
  return target;
}

/** Metadata as the Connect end-stream JSON wants it: every value in a list. */
export function metadataToJsonRecord(block: IncomingHttpHeaders | undefined): Record<string, string[]> | undefined {
  if (block === undefined) return undefined;
  let record: Record<string, string[]> | undefined;
  for (const name in block) {
    if (!isResponseMetadata(name)) continue;
    const value = block[name];
    if (value === undefined) continue;
    // No prototype: a trailer may be called "__proto__" or "constructor".
    record ??= Object.create(null) as Record<string, string[]>;
    record[name] = Array.isArray(value) ? value : [value];
  }
  return record;
}

/** A header block as a WHATWG Headers, for connect-es helpers. */
export function toHeaders(block: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const name in block) {
    if (name.charCodeAt(0) === 58) continue;
    const value = block[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}
