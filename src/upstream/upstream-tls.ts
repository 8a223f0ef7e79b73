/**
 * TLS options for connections to a cluster's endpoints: verification against
 * a custom CA (or Node's roots), a server name for SNI and the certificate
 * check, a client certificate for mTLS, and ALPN h2 (gRPC needs HTTP/2; a
 * server that does not offer h2 fails the connection instead of falling back).
 */
import type { ConnectionOptions } from "node:tls";
import { isIP } from "node:net";
import type { UpstreamTlsOptions } from "./cluster-options.js";

/**
 * @param hostname the name the address came from (DNS), if any: the default
 *   server name, since the certificate names the service, not its IPs.
 */
export function tlsConnectOptions(tls: UpstreamTlsOptions, host: string, hostname: string | undefined): ConnectionOptions {
  const servername = tls.serverName ?? hostname ?? (isIP(host) === 0 ? host : undefined);
  return {
    ALPNProtocols: ["h2"],
    ...(tls.ca !== undefined && { ca: tls.ca }),
    ...(tls.cert !== undefined && { cert: tls.cert }),
    ...(tls.key !== undefined && { key: tls.key }),
    ...(servername !== undefined && { servername }),
    rejectUnauthorized: !tls.insecureSkipVerify,
  };
}
