#!/usr/bin/env node
/**
 * `connect-grpc-bridge --upstream HOST:PORT` or `--config FILE` or
 * `--from-envoy FILE`: the bridge as a process.
 */
import { readFileSync } from "node:fs";
import type { Server as TlsServer } from "node:tls";
import { parseArgs } from "node:util";
import { LogController } from "fastify";
import { createBridge } from "./index.js";
import { loadConfig, printConfig, type LoadedConfig } from "./config/load.js";
import { ConfigError } from "./config/validate.js";
import { reloadCertificates } from "./front-door-reload.js";
import { announceListening, startWorkers } from "./workers.js";
import { Lifecycle } from "./lifecycle.js";
import { countExternalMemoryInHeapLimit, tuneHeapGrowth } from "./heap-growth.js";
import { capYoungGeneration } from "./young-generation.js";

const usage = `Usage: connect-grpc-bridge --upstream HOST:PORT|URL [options]
       connect-grpc-bridge --config bridge.yaml [options]
       connect-grpc-bridge --from-envoy envoy.yaml [options]

Accepts Connect, gRPC-Web and native gRPC requests on one port (HTTP/1.1 and
HTTP/2: h2c in cleartext, ALPN with TLS) and forwards them as native gRPC over
HTTP/2 to the upstream server, or to clusters chosen by routes.

Options:
  --config FILE             YAML or JSON config file (see the README's
                            Configuration section); env CONNECT_GRPC_BRIDGE_CONFIG
  --from-envoy FILE         run the equivalent of an Envoy bootstrap (listener,
                            routes, clusters); what is not supported is listed
  --print-config            print the effective config (defaults applied) and exit
  --print-openapi           print the OpenAPI 3.1 document of the schema's REST
                            bindings (google.api.http) and exit; needs
                            --descriptor-set or --reflection (which asks the
                            upstream first)
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
  --descriptor-set FILE     a FileDescriptorSet or buf image (buf build -o FILE.binpb)
                            to transcode JSON calls to protobuf (repeatable)
  --reflection              get the schema from the upstream's gRPC server reflection
  --reflection-passthrough  let server reflection calls through to the upstream
                            (buf curl --reflect, grpcurl); off by default
  --rest                    serve the schema's google.api.http bindings as REST
                            routes (needs --descriptor-set or --reflection)
  --openapi-path PATH       serve the OpenAPI document of the REST routes at
                            PATH (default /openapi.json); either flag turns it
                            on; needs --rest
  --openapi-on admin|data   serve it on the admin port (default admin) or on
                            this port, beside the calls
  --log-level LEVEL         fatal, error, warn, info, debug, trace or silent
                            (default info)
  --workers N               serve from N processes sharing the port, one per
                            core you give the bridge (default 1)
  --access-log BOOL         one JSON line per call at info (default true; false
                            turns it off)
  --access-log-success-sample-ratio R
                            share of successful calls logged, 0 to 1 (default 1;
                            errors and refusals are always logged)
  --tracing                 OpenTelemetry spans per call (W3C traceparent in and
                            out); with --otlp-url the bridge exports them
  --otlp-url URL            export spans over OTLP/HTTP protobuf, e.g.
                            http://collector:4318/v1/traces (turns tracing on)
  --trace-sample-ratio R    share of new traces sampled, 0 to 1 (default 1)
  --trace-service-name NAME service.name of exported spans (default
                            connect-grpc-bridge)
  --drain-delay-ms N        after SIGTERM, keep accepting for N ms while readiness
                            fails, so load balancers stop sending (default 5000)
  --drain-timeout-ms N      then let in-flight calls run up to N ms before they
                            end with unavailable (default 20000)
  --metrics                 count and time calls for Prometheus (served by the
                            admin listener's /metrics); off by default
  --admin-port N            serve /healthz, /readyz, /metrics, /config and
                            /clusters on this port (its own listener, never the
                            data port); 0 picks a free port. Off by default
  --admin-host ADDR         address of the admin listener (default 127.0.0.1)
  --version                 print the version and exit
  -h, --help                show this help

Every option but --config/--from-envoy/--print-config/--print-openapi/--help
can also be set with an environment variable: CONNECT_GRPC_BRIDGE_ and the
flag's name in upper case with "_" for "-" (CONNECT_GRPC_BRIDGE_MAX_REQUEST_BYTES);
lists are comma-separated. Precedence: flags, then environment, then the config file,
then defaults.

Once listening it prints a line containing "listening on http://ADDR:PORT"
(https:// with TLS); with --admin-port, before it a line "admin endpoints at
http://ADDR:PORT".
SIGTERM and SIGINT drain it: readiness fails at once, the port keeps accepting
for --drain-delay-ms, then closes (HTTP/2 clients get GOAWAY, HTTP/1.1 ones
Connection: close); calls still open after --drain-timeout-ms end with
unavailable in their own protocol; then it exits 0. A second signal exits at
once with code 1. With --workers, every worker drains the same way. SIGHUP
reloads the TLS certificate and key (so does a change to either file).`;

/**
 * The text of Fastify's own "Server listening at" log line (which says http://
 * under TLS too): the logger drops it, the bridge prints its own line.
 */
const fastifyListening = "connect-grpc-bridge: Fastify listening";

/** After the drain timeout, how long ended calls' connections get to close before they are cut. */
const closeGraceMs = 2000;

/** Exits with code 2 and `message`; the usage follows only a usage error (a flag parseArgs rejects), not a start-up failure. */
function fail(message: string, showUsage = false): never {
  // Errors of the plugin's options carry the name already (they are also thrown to embedders).
  const text = message.startsWith("connect-grpc-bridge: ") ? message : `connect-grpc-bridge: ${message}`;
  process.stderr.write(`${text}\n${showUsage ? `\n${usage}\n` : ""}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: "string" },
        "from-envoy": { type: "string" },
        "print-config": { type: "boolean" },
        "print-openapi": { type: "boolean" },
        "openapi-path": { type: "string" },
        "openapi-on": { type: "string" },
        upstream: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "max-request-bytes": { type: "string" },
        "max-response-bytes": { type: "string" },
        "log-level": { type: "string" },
        "cors-origin": { type: "string", multiple: true },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "cors-allow-header": { type: "string", multiple: true },
        "descriptor-set": { type: "string", multiple: true },
        reflection: { type: "boolean" },
        "reflection-passthrough": { type: "boolean" },
        rest: { type: "boolean" },
        workers: { type: "string" },
        "access-log": { type: "string" },
        "access-log-success-sample-ratio": { type: "string" },
        tracing: { type: "boolean" },
        "otlp-url": { type: "string" },
        "trace-sample-ratio": { type: "string" },
        "trace-service-name": { type: "string" },
        "drain-delay-ms": { type: "string" },
        "drain-timeout-ms": { type: "string" },
        metrics: { type: "boolean" },
        "admin-port": { type: "string" },
        "admin-host": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
    }));
  } catch (error) {
    fail((error as Error).message, true);
  }
  if (values.help) {
    process.stdout.write(usage + "\n");
    return;
  }
  if (values.version) {
    // package.json is two levels above dist/src/cli.js, in a clone and in an install alike.
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    process.stdout.write(`${version}\n`);
    return;
  }
  let loaded: LoadedConfig;
  try {
    // Printing a config for another machine must not need that machine's TLS files.
    loaded = loadConfig(values, process.env, { readFiles: !values["print-config"] });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  for (const item of loaded.unsupported) {
    process.stderr.write(`connect-grpc-bridge: warning: not supported, not applied: ${item}\n`);
  }
  if (values["print-config"]) {
    process.stdout.write(printConfig(loaded));
    return;
  }
  if (values["print-openapi"]) {
    try {
      // Imported here: a bridge that serves never needs the document builder.
      const { openApiOfConfig } = await import("./openapi/print.js");
      process.stdout.write(JSON.stringify(await openApiOfConfig(loaded.config, loaded.deployment), null, 2) + "\n");
    } catch (error) {
      fail((error as Error).message);
    }
    return;
  }
  const { config, deployment } = loaded;
  // Before the workers fork: the primary and each worker (the same command line) set it.
  const heapGrowth = tuneHeapGrowth();
  const externalMemory = countExternalMemoryInHeapLimit();
  const youngGeneration = capYoungGeneration();
  // Checked and printed once, by the primary; each worker runs the rest.
  if (startWorkers(config.workers)) return;
  let tls;
  try {
    tls = config.tls === undefined ? undefined : { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  } catch (error) {
    fail(`cannot read the TLS files: ${(error as Error).message}`);
  }
  // Everything but the process's own keys is the plugin's options, validated already.
  const { listen, tls: tlsFiles, logLevel, workers, drainDelayMs, ...options } = config;
  // Access log lines are written at info: below it they would be built for nothing.
  if (options.accessLog !== undefined && !["info", "debug", "trace"].includes(logLevel)) {
    options.accessLog = { ...options.accessLog, enabled: false };
  }
  // What readiness reads and SIGTERM changes; shared with the plugin, which drains on close.
  const lifecycle = new Lifecycle();
  let app;
  try {
    app = createBridge({
      ...options,
      lifecycle,
      // The admin listener's /config shows the whole process config (listen, tls files, ...).
      ...(options.admin === undefined
        ? {}
        : {
            admin: {
              ...options.admin,
              config,
              onListening: (url: string) => process.stdout.write(`connect-grpc-bridge admin endpoints at ${url}\n`),
            },
          }),
      tls,
      // "silent" is no logger at all: not even a child logger per request.
      fastify: {
        logger:
          logLevel === "silent"
            ? false
            : {
                level: logLevel,
                hooks: {
                  logMethod(args, method) {
                    if (args[0] !== fastifyListening) method.apply(this, args);
                  },
                },
              },
        logController: new LogController({ disableRequestLogging: true }),
      },
    });
    await app.listen({ port: listen.port, host: listen.host, listenTextResolver: () => fastifyListening });
  } catch (error) {
    fail((error as Error).message);
  }
  lifecycle.listening = true;
  // Before the listening line: whoever waits for it may send SIGHUP at once.
  const reloader =
    tlsFiles === undefined ? undefined : reloadCertificates(app.server as unknown as TlsServer, tlsFiles, app.log);
  if (reloader !== undefined) process.on("SIGHUP", () => reloader.reload("SIGHUP"));
  // Before the listening line: whoever waits for it may send SIGTERM at once.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal means now: whoever sends it chose to cut the calls.
      process.stderr.write(`connect-grpc-bridge: ${signal} again: exiting at once\n`);
      process.exit(1);
    }
    stopping = true;
    lifecycle.startDraining(signal);
    app.log.info(
      { drainDelayMs, drainTimeoutMs: options.drainTimeoutMs },
      `${signal}: draining: not ready; accepting for ${drainDelayMs} ms more, then in-flight calls have ${options.drainTimeoutMs} ms`,
    );
    reloader?.close();
    setTimeout(() => {
      lifecycle.listening = false;
      app.log.info("drain: port closed to new connections (HTTP/2 GOAWAY, HTTP/1.1 Connection: close)");
      // Calls are ended at the deadline; a connection that carries none (a
      // client that connected and never sent a request) would hold the
      // close open: cut what is left a little after.
      setTimeout(() => {
        app.log.warn(`drain: connections still open ${closeGraceMs} ms after the drain timeout; closing them`);
        app.server.closeAllConnections();
      }, options.drainTimeoutMs + closeGraceMs).unref();
      app.close().then(
        () => {
          app.log.info("drain: done, exiting");
          process.exit(0);
        },
        (error: unknown) => {
          process.stderr.write(`connect-grpc-bridge: closing failed: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
    }, drainDelayMs);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  const address = app.server.address();
  const shown =
    address !== null && typeof address === "object"
      ? `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
      : String(address);
  const behind =
    deployment === undefined
      ? `upstream ${config.upstream}`
      : `clusters ${deployment.clusters.map((c) => `${c.name} (${c.endpoints.join(", ")})`).join(", ")}`;
  announceListening(`connect-grpc-bridge listening on ${tls ? "https" : "http"}://${shown} -> ${behind}`);
  app.log.debug(
    heapGrowth === undefined
      ? "V8 heap growth: the process's own --heap-growing-percent"
      : `V8 heap growth: ${heapGrowth} (docs/architecture.md, "Heap growth")`,
  );
  app.log.debug(
    externalMemory === undefined
      ? "V8 external memory: V8's own limit (the operator set the flag, or this V8 has none)"
      : `V8 external memory: ${externalMemory} (docs/architecture.md, "Heap growth")`,
  );
  app.log.debug(
    youngGeneration === undefined
      ? "V8 young generation: the process's own semi-space setting"
      : `V8 young generation: capped at ${youngGeneration} (docs/architecture.md, "Heap growth")`,
  );
  const origins = options.cors?.allowedOrigins ?? [];
  app.log.info(
    origins.length === 0
      ? "CORS off: browsers on other origins cannot call the bridge (set --cors-origin)"
      : `CORS: allowed origins ${origins === "*" ? "any" : origins.join(", ")}`,
  );
}

await main();
