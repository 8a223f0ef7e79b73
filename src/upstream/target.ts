/**
 * Parses the upstream address given by a user: `host:port`, `http://host:port`
 * or `h2c://host:port`. Only cleartext HTTP/2 (h2c) is supported so far.
 */
export interface UpstreamTarget {
  /** Origin for http2.connect, e.g. `http://127.0.0.1:50051`. */
  origin: string;
  /** `:authority` sent on each call. */
  authority: string;
}

export function parseUpstreamTarget(value: string | URL): UpstreamTarget {
  const text = String(value).trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`invalid upstream "${text}": expected HOST:PORT or http://HOST:PORT`);
  }
  if (url.protocol === "https:") {
    throw new TypeError(`invalid upstream "${text}": --upstream is cleartext HTTP/2 (h2c) only; for TLS define a cluster with "tls" in a config file (--config)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "h2c:") {
    throw new TypeError(`invalid upstream "${text}": scheme must be http:// (h2c)`);
  }
  if (url.port === "" || (url.pathname !== "/" && url.pathname !== "")) {
    throw new TypeError(`invalid upstream "${text}": expected HOST:PORT with an explicit port and no path`);
  }
  return { origin: `http://${url.host}`, authority: url.host };
}
