/**
 * The config as /config shows it: secrets out. File paths stay (they say
 * where a key is, not what it is); inline key, certificate and CA material,
 * and anything named like a password or token, is replaced. Bytes (e.g.
 * descriptor sets given inline) are shown by size.
 */

/** Keys whose values are secret material when inline. */
const secretKey = /^(key|cert|ca|pfx|passphrase|password|secret|token|authorization)$|password|secret|token|privatekey/i;

export const redacted = "[redacted]";

/** A JSON-safe copy of `value` with the secrets replaced. */
export function redact(value: unknown): unknown {
  return copy(value, undefined, new WeakSet());
}

function copy(value: unknown, key: string | undefined, seen: WeakSet<object>): unknown {
  if (key !== undefined && secretKey.test(key) && value !== undefined && value !== null && value !== "") return redacted;
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (typeof value === "function") return undefined;
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value)) return "[circular]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => copy(item, undefined, seen));
  const prototype = Object.getPrototypeOf(value);
  // Objects of code (an Upstream, a Registry) are not config: named, not walked.
  if (prototype !== Object.prototype && prototype !== null) return `[${(value as object).constructor?.name ?? "object"}]`;
  const out: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value)) {
    const shown = copy(item, name, seen);
    if (shown !== undefined) out[name] = shown;
  }
  return out;
}
