#!/usr/bin/env node
/**
 * `connect-grpc-bridge --upstream HOST:PORT`: the bridge as a process.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { LogController } from "fastify";
import { createBridge, type BridgeCorsOptions } from "./index.js";
import { announceListening, startWorkers } from "./workers.js";

const usage = `Usage: connect-grpc-bridge --upstream HOST:PORT|URL [options]

Accepts Connect, gRPC-Web and native gRPC requests on one port (HTTP/1.1 and
HTTP/2: h2c in cleartext, ALPN with TLS) and forwards them as native gRPC over
cleartext HTTP/2 (h2c) to the upstream server.

Options:
  --upstream HOST:PORT|URL  gRPC server to forward to, e.g. localhost:50051 or
                            http://localhost:50051 (required)
  --port N                  port to listen on; 0 picks a free port (default 8080)
  --host ADDR               address to listen on (default 127.0.0.1; use 0.0.0.0
                            to accept connections from other machines)
  --tls-cert FILE           serve TLS with this PEM certificate (chain); needs --tls-key
  --tls-key FILE            the PEM private key for --tls-cert
  --max-request-bytes N     largest request message from a client (default 4194304)
  --max-response-bytes N    largest response message from the upstream (default 4194304)
  --cors-origin ORIGIN      allow browser calls from ORIGIN (repeatable), e.g.
                            https://app.example.com; "*" for any origin; "none"
                            to turn CORS off. Default: any origin when --host is
                            a loopback address (local development), off otherwise
  --cors-allow-header NAME  a request header pages may send besides the protocol's
                            own, e.g. Authorization (repeatable)
  --log-level LEVEL         fatal, error, warn, info, debug, trace or silent
                            (default info)
  --workers N               serve from N processes sharing the port, one per
                            core you give the bridge (default 1)
  -h, --help                show this help

Once listening it prints a line containing "listening on http://ADDR:PORT"
(https:// with TLS).
SIGINT and SIGTERM stop it after in-flight calls finish.`;

const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/** CORS from the flags; permissive by default only on a loopback address. */
function corsFromFlags(
  origins: string[] | undefined,
  allowHeaders: string[] | undefined,
  host: string,
): BridgeCorsOptions | false {
  const allowedHeaders = allowHeaders ?? [];
  if (origins === undefined) {
    return loopback.test(host) ? { allowedOrigins: "*", allowedHeaders } : false;
  }
  if (origins.includes("none")) return false;
  if (origins.includes("*")) return { allowedOrigins: "*", allowedHeaders };
  return { allowedOrigins: origins, allowedHeaders };
}

function fail(message: string): never {
  process.stderr.write(`connect-grpc-bridge: ${message}\n\n${usage}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        upstream: { type: "string" },
        port: { type: "string", default: "8080" },
        host: { type: "string", default: "127.0.0.1" },
        "max-request-bytes": { type: "string" },
        "max-response-bytes": { type: "string" },
        "log-level": { type: "string", default: "info" },
        "cors-origin": { type: "string", multiple: true },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "cors-allow-header": { type: "string", multiple: true },
        workers: { type: "string", default: "1" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(usage + "\n");
    return;
  }
  if (values.upstream === undefined) fail("--upstream is required");
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0-65535, got "${values.port}"`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) fail(`--workers must be a positive integer, got "${values.workers}"`);
  if (startWorkers(workers)) return;
  const bytes = (name: "max-request-bytes" | "max-response-bytes") =>
    values[name] === undefined ? undefined : Number(values[name]);

  const cors = corsFromFlags(values["cors-origin"], values["cors-allow-header"], values.host);
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
    fail("--tls-cert and --tls-key go together");
  }
  let tls;
  try {
    tls =
      values["tls-cert"] === undefined
        ? undefined
        : { cert: readFileSync(values["tls-cert"]), key: readFileSync(values["tls-key"]!) };
  } catch (error) {
    fail(`cannot read the TLS files: ${(error as Error).message}`);
  }
  let app;
  try {
    app = createBridge({
      upstream: values.upstream,
      maxRequestBytes: bytes("max-request-bytes"),
      maxResponseBytes: bytes("max-response-bytes"),
      cors,
      tls,
      // "silent" is no logger at all: not even a child logger per request.
      fastify: {
        logger: values["log-level"] === "silent" ? false : { level: values["log-level"] },
        logController: new LogController({ disableRequestLogging: true }),
      },
    });
    await app.listen({ port, host: values.host });
  } catch (error) {
    fail((error as Error).message);
  }
  const address = app.server.address();
  const shown =
    address !== null && typeof address === "object"
      ? `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
      : String(address);
  announceListening(`connect-grpc-bridge listening on ${tls ? "https" : "http"}://${shown} -> upstream ${values.upstream}`);
  app.log.info(
    cors === false
      ? "CORS off: browsers on other origins cannot call the bridge (set --cors-origin)"
      : `CORS: allowed origins ${cors.allowedOrigins === "*" ? "any (local development default)" : cors.allowedOrigins.join(", ")}`,
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second signal means now
    stopping = true;
    app.log.info(`${signal}: closing`);
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

await main();
