/**
 * The Fastify plugin: one catch-all route per HTTP method the protocols use,
 * raw body streams (no parsing), a call pipeline per cluster, and a dispatch
 * to the client protocol the request is classified as (src/inbound/classify.ts).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { Server as TlsServer } from "node:tls";
import fastifyCors from "@fastify/cors";
import { cors as connectCors } from "@connectrpc/connect";
import { resolveOptions, type GrpcBridgeOptions, type ResolvedOptions } from "./options.js";
import type { Upstream } from "./upstream/upstream.js";
import type { UpstreamTarget } from "./upstream/target.js";
import type { ClusterOptions } from "./upstream/cluster-options.js";
import { createCluster } from "./upstream/cluster.js";
import { refusedCall, type CallEnd, type CallLayer, type StartCall } from "./call.js";
import { upstreamStartCall } from "./upstream/start-call.js";
import { defaultClusterOptions } from "./config/deployment.js";
import { Router } from "./routing/router.js";
import { Code, ConnectError, codeFromUpstreamHttpStatus } from "./protocol/status.js";
import { isProcedurePath } from "./protocol/procedure-path.js";
import { exchangeFor, type BridgeContext, type Exchange } from "./inbound/exchange.js";
import { classifyRequest, httpRefusal, negotiationFailure, refuse, unknownProcedure } from "./inbound/classify.js";
import { reflectionRefused } from "./schema/reflection-gate.js";
import { PassthroughHints, withPassthroughHints } from "./schema/passthrough-hint.js";
import type { RestRoutes } from "./rest/routes.js";
import { AccessLog } from "./observability/access-log.js";
import {
  observerDecoration,
  requestedPath,
  requestObserver,
  type ObservedRequest,
  type RequestObserver,
} from "./observability/request-observer.js";
import type { ClassifiedRequest } from "./inbound/client-protocol.js";
import { CallDrain } from "./drain.js";
import { Lifecycle } from "./lifecycle.js";
import type { BridgeMetrics } from "./observability/metrics.js";
import { startAdmin } from "./admin/plugin-admin.js";

/**
 * REST's routes and the adapter that serves them. Like the schema, the
 * OpenAPI document, metrics and tracing, REST is imported only when it is
 * configured: their modules (protobuf-es's descriptors among them) would
 * otherwise be live heap that every full GC marks again (docs/architecture.md).
 */
interface RestFront {
  readonly routes: RestRoutes;
  readonly adapter: typeof import("./inbound/rest.js");
}

/**
 * Bridges Connect requests under the plugin's prefix to a gRPC upstream.
 * Encapsulated: its content-type parsers and routes do not leak into the
 * host app, while the host's own hooks (auth, rate limits, logging) run for
 * every bridged call.
 *
 * @example
 * app.register(grpcBridge, { upstream: "http://127.0.0.1:50051" });
 */
export async function grpcBridge(fastify: FastifyInstance, options: GrpcBridgeOptions): Promise<void> {
  const resolved = resolveOptions(options);
  const target = resolved.upstream;
  const openapi = resolved.openapi?.on === "data" ? resolved.openapi : undefined;
  if (resolved.openapi !== undefined) {
    if (openapi !== undefined && isProcedurePath(openapi.path.slice(1))) {
      throw new TypeError(`connect-grpc-bridge: openapi.path "${openapi.path}" has the form /package.Service/Method: it would shadow that RPC; choose a path like "/openapi.json"`);
    }
    // The document describes the REST routes this bridge serves: none without REST.
    if (!resolved.rest.enabled) {
      throw new TypeError('connect-grpc-bridge: option "openapi" describes the REST routes: it needs "rest.enabled" (--rest) and a schema');
    }
    if (openapi === undefined && resolved.admin === undefined) {
      throw new TypeError('connect-grpc-bridge: option "openapi" is served on the admin port by default, and there is none: set "admin.port" (--admin-port), or "openapi.on": "data" (--openapi-on data)');
    }
  }
  // An Upstream handed in belongs to the caller; ones built here are closed here.
  const owned: Upstream[] = [];
  // One schema for every cluster; reflection is cached per Upstream inside it.
  let transcoding: ((upstream: Upstream, hints: PassthroughHints) => CallLayer) | undefined;
  if (resolved.schema !== undefined) {
    const [{ BridgeSchema }, { withTranscoding }] = await Promise.all([import("./schema/schema.js"), import("./schema/transcode.js")]);
    const schema = new BridgeSchema(resolved.schema, (level, fields, message) => fastify.log[level](fields, message), resolved.maxResponseBytes);
    transcoding = (upstream, hints) => withTranscoding(schema, upstream, hints, resolved.maxRequestBytes);
  }
  const limits = { maxResponseMessageBytes: resolved.maxResponseBytes };
  const hintLog = (fields: Record<string, unknown>, message: string) => fastify.log.warn(fields, message);
  // Every Upstream calls go to (REST with reflection asks each for its schema
  // at start; metrics and the admin listener read their stats).
  const served: Upstream[] = [];
  // What readiness reads and a close drains: the host's, or one of our own.
  const lifecycle = resolved.lifecycle ?? new Lifecycle();
  // Observability: nothing of it is in the call path unless configured.
  // Tracing and metrics are imported only when on: an unused module still
  // costs every full GC its share of the live heap (see docs/architecture.md).
  const tracing =
    resolved.tracing === undefined ? undefined : await (await import("./observability/tracing.js")).startTracing(resolved.tracing);
  const observer = requestObserver(
    resolved.accessLog === undefined ? undefined : new AccessLog(fastify.log, resolved.accessLog),
    tracing,
  );
  // Every open call, whatever its cluster, for the drain on close.
  const drain = new CallDrain();
  // Off: undefined, and no layer of it in any pipeline.
  const metrics =
    resolved.metrics === undefined ? undefined : new (await import("./observability/metrics.js")).BridgeMetrics(resolved.metrics);
  // One cluster's pipeline: metrics and tracing (when on); the drain's record of open
  // calls; transcoding only when a schema is configured (bound to the
  // cluster's Upstream, whose reflection it asks), else a layer that names
  // the missing schema in the log; then the upstream.
  const callsTo = (upstream: Upstream): StartCall => {
    served.push(upstream);
    const hints = new PassthroughHints(upstream.name, hintLog);
    const layer = transcoding === undefined ? withPassthroughHints(hints) : transcoding(upstream, hints);
    metrics?.watch(upstream);
    // Tracing outside the drain: a call the drain ends still ends its span.
    const pipeline = drain.layer(layer(upstreamStartCall(upstream, limits)));
    const traced = tracing === undefined ? pipeline : tracing.layer(pipeline);
    // Outermost: it sees each call as the client made it, refusals of the layers included.
    return metrics === undefined ? traced : metrics.layer()(traced);
  };
  let ctx: BridgeContext;
  let router: Router<BridgeContext> | undefined;
  if (target === undefined) {
    // Clusters and routes: one context per cluster, built once, so routing a
    // call allocates nothing.
    const contexts = new Map<string, BridgeContext>();
    for (const cluster of resolved.deployment!.clusters) {
      const upstream = createCluster(cluster, fastify.log, limits);
      owned.push(upstream);
      contexts.set(cluster.name, { startCall: callsTo(upstream), options: resolved });
    }
    router = new Router(resolved.deployment!.routes, contexts);
    ctx = contexts.values().next().value!;
  } else if ("request" in target) {
    ctx = { startCall: callsTo(target), options: resolved };
  } else {
    const upstream = createCluster(singleEndpointCluster(target, resolved), fastify.log, limits);
    owned.push(upstream);
    ctx = { startCall: callsTo(upstream), options: resolved };
  }

  let rest: RestFront | undefined;
  if (resolved.rest.enabled) {
    if (resolved.schema === undefined) {
      throw new TypeError('connect-grpc-bridge: option "rest.enabled" needs a schema: "schema.descriptorSets" or "schema.reflection" (--descriptor-set, --reflection)');
    }
    try {
      const [routes, { restSchemaTypes }, adapter] = await Promise.all([import("./rest/routes.js"), import("./rest/schema-types.js"), import("./inbound/rest.js")]);
      rest = { routes: new routes.RestRoutes(await restSchemaTypes(resolved.schema, served, resolved.maxResponseBytes)), adapter };
    } catch (error) {
      await Promise.all(owned.map((upstream) => upstream.close()));
      throw error;
    }
    fastify.log.info({ routes: rest.routes.bindings.length }, "REST routes loaded from google.api.http annotations");
  }
  const openApiModule = resolved.openapi === undefined ? undefined : await import("./openapi/route.js");
  if (observer !== undefined) fastify.decorateRequest(observerDecoration, { getter: () => observer });

  // Bodies are streamed to the upstream as they arrive; nothing is parsed.
  fastify.removeAllContentTypeParsers();
  const readNothing = (_request: unknown, _payload: unknown, done: (error: null) => void) => done(null);
  fastify.addContentTypeParser("*", readNothing);
  // Same parser under a match-all RegExp: Fastify caches what a RegExp
  // matched per content type, but looks the "*" catch-all up afresh (parsing
  // the header) on every request.
  fastify.addContentTypeParser(/^/, readNothing);

  const methods: HTTPMethods[] = ["DELETE", "GET", "PATCH", "POST", "PUT"];
  if (resolved.cors !== undefined) {
    const cors = resolved.cors;
    // Registered inside this plugin's context: the policy covers the bridge's
    // routes, not the host app's. It answers preflights (OPTIONS) itself.
    await fastify.register(fastifyCors, {
      origin: cors.allowedOrigins === "*" ? "*" : [...cors.allowedOrigins],
      // REST routes use more verbs than Connect's GET and POST.
      methods: [...new Set([...connectCors.allowedMethods, ...[...(rest?.routes.verbs ?? [])].filter((verb) => verb !== "*")])],
      allowedHeaders: [...connectCors.allowedHeaders, ...cors.allowedHeaders],
      exposedHeaders: [...connectCors.exposedHeaders, ...cors.exposedHeaders],
      maxAge: cors.maxAgeSeconds,
      credentials: cors.credentials,
    });
  } else {
    methods.push("OPTIONS");
  }
  // Custom REST verbs (google.api.http `custom`) the router must know too.
  for (const verb of rest?.routes.verbs ?? []) {
    // `methods` has every standard verb already: only custom ones are added.
    if (verb === "*" || methods.includes(verb as HTTPMethods)) continue;
    if (!fastify.supportedMethods.includes(verb)) fastify.addHttpMethod(verb, { hasBody: true });
    methods.push(verb as HTTPMethods);
  }
  // Per-route facts, once: the prefix's length (reading request.routeOptions
  // builds a fresh 12-field object on every read).
  let prefix = -1;
  fastify.route({
    // Every method, so that the wrong one gets a 405 in the client's protocol, not a 404.
    method: methods,
    url: "/*",
    handler: (request, reply) => {
      if (prefix < 0) prefix = prefixLength(request);
      dispatch(resolved, ctx, router, rest, prefix, request, reply, observer, metrics);
    },
  });
  // Errors Fastify raises before the handler runs (a Content-Type it cannot
  // even parse, ...) are refused in the client's protocol, not in Fastify's own JSON.
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    reply.hijack();
    const failure = new ConnectError(error.message, status === 415 ? Code.Unknown : codeFromUpstreamHttpStatus(status));
    const exchange = exchangeFor(request, reply);
    const classified = classifyRequest(request.raw);
    const observed = observer?.begin(request.raw, reply.raw, requestedPath(request), classified.protocol.name);
    metrics?.refused("error", classified.protocol.name);
    refuseObserved(exchange, classified, httpRefusal(failure, status, resolved), observed);
  });
  // Closing drains: readiness fails first, then (Fastify, after preClose)
  // the listener closes and the front door sends GOAWAY / Connection: close;
  // open calls get drainTimeoutMs from now. The server's close waits for
  // them, so the deadline must start here, not in onClose.
  let drained: Promise<void> | undefined;
  fastify.addHook("preClose", (done) => {
    lifecycle.startDraining("close");
    drained = drain.drain(resolved.drainTimeoutMs, (fields, message) => fastify.log.info(fields, message));
    done();
  });
  if (resolved.admin !== undefined) {
    let admin = resolved.admin;
    if (resolved.openapi?.on === "admin") {
      // Built now, so a bad binding fails the start; its server (the data
      // port, which the admin port is not) is known once the app listens.
      const options = resolved.openapi;
      const bindings = rest!.routes.bindings;
      const { openApiRoute } = openApiModule!;
      openApiRoute(bindings, options);
      let answer: { contentType: string; body: string } | undefined;
      const routes = new Map(admin.extraRoutes);
      routes.set(options.path, () => (answer ??= openApiRoute(bindings, options, dataPortServer(fastify))));
      admin = { ...admin, extraRoutes: routes };
    }
    startAdmin(fastify, admin, lifecycle, metrics, served);
  }
  fastify.addHook("onClose", async () => {
    await drained;
    drain.stop();
    await Promise.all(owned.map((upstream) => upstream.close()));
    await tracing?.shutdown();
  });
  if (openapi !== undefined) {
    try {
      // The bindings the REST routes were built from: the document lists what is served.
      openApiModule!.mountOpenApi(fastify, openapi, rest!.routes.bindings);
    } catch (error) {
      await Promise.all(owned.map((upstream) => upstream.close()));
      throw error;
    }
  }
}

/**
 * Hands the call to the protocol the request speaks, classified once; every
 * answer that is not a call (bad path, no route, wrong verb or codec) is
 * that protocol's refusal. `router` is undefined with a single upstream
 * (`ctx`): then no per-call routing work is done at all.
 */
function dispatch(
  options: ResolvedOptions,
  base: BridgeContext,
  router: Router<BridgeContext> | undefined,
  rest: RestFront | undefined,
  prefix: number,
  request: FastifyRequest,
  reply: FastifyReply,
  observer: RequestObserver | undefined,
  metrics: BridgeMetrics | undefined,
): void {
  reply.hijack();
  const req = request.raw;
  // The raw path, not Fastify's decoded wildcard: "/a.B%2FC" must not become
  // the procedure "/a.B/C" behind the back of hooks that matched the URL.
  let url = req.url ?? "";
  if (url.charCodeAt(0) !== 47 /* "/" */) {
    // Absolute form ("POST http://host/pkg.Service/Method"): keep the path.
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    url = pathStart < 0 ? "/" : url.slice(pathStart);
  }
  const query = url.indexOf("?");
  let procedure = url.slice(prefix, query < 0 ? url.length : query);
  const exchange = exchangeFor(
    request,
    reply,
    "/" + procedure,
    options.cors !== undefined && req.headers.origin !== undefined,
  );
  let classified = classifyRequest(req);
  let observed: ObservedRequest | undefined;
  try {
    // REST only when it is on, and never for gRPC or gRPC-Web (their content types say so).
    if (rest !== undefined && classified.protocol.name !== "grpc" && classified.protocol.name !== "grpc-web") {
      const { classifyRest, restNotFound, restRouteNotFound } = rest.adapter;
      const restRequest = classifyRest(rest.routes, req, exchange.path);
      if (restRequest !== undefined) {
        classified = restRequest;
        exchange.path = restRequest.match.binding.rpcPath;
        procedure = exchange.path.slice(1);
      } else if (!isProcedurePath(procedure)) {
        observed = observer?.begin(req, reply.raw, exchange.path, restNotFound.protocol.name);
        metrics?.refused("unknown_path", restNotFound.protocol.name);
        refuseObserved(exchange, restNotFound, restRouteNotFound(req.method, exchange.path), observed);
        return;
      }
    }
    observed = observer?.begin(req, reply.raw, exchange.path, classified.protocol.name);
    if (!isProcedurePath(procedure)) {
      metrics?.refused("unknown_path", classified.protocol.name);
      refuseObserved(exchange, classified, unknownProcedure(`no procedure at path "${exchange.path}": expected /package.Service/Method`), observed);
      return;
    }
    if (reflectionRefused(options.reflectionPassthrough, procedure)) {
      metrics?.refused("reflection", classified.protocol.name);
      refuseObserved(
        exchange,
        classified,
        unknownProcedure(`${exchange.path}: server reflection is not served through this bridge (option reflectionPassthrough)`),
        observed,
      );
      return;
    }
    let ctx = base;
    if (router !== undefined) {
      const routed = router.route(exchange.path, (req.headers[":authority"] as string | undefined) ?? req.headers.host);
      if (routed === undefined) {
        // Unrouted and denied calls get the same answer: a denied service is
        // indistinguishable from one that does not exist.
        metrics?.refused(router.denies(exchange.path, (req.headers[":authority"] as string | undefined) ?? req.headers.host) ? "denied" : "unrouted", classified.protocol.name);
        refuseObserved(exchange, classified, unknownProcedure(`procedure ${exchange.path} is not served here`), observed);
        return;
      }
      ctx = routed;
    }
    const failure = negotiationFailure(classified, req, ctx.options);
    if (failure !== undefined) {
      metrics?.refused("protocol", classified.protocol.name);
      refuseObserved(exchange, classified, failure, observed);
      return;
    }
    if (observed !== undefined) ctx = observed.context(ctx);
    classified.protocol.start(ctx, exchange, classified, query < 0 ? "" : url.slice(query + 1));
  } catch (error) {
    request.log.error({ err: error }, "bridge failed to handle a call");
    refuseObserved(exchange, classified, refusedCall(new ConnectError("internal bridge error", Code.Internal)), observed);
  }
}

/** A refusal, told to the access log (when on) before it is answered. */
function refuseObserved(exchange: Exchange, classified: ClassifiedRequest, end: CallEnd, observed: ObservedRequest | undefined): void {
  observed?.refused(end);
  refuse(exchange, classified, end);
}

/**
 * `upstream: "host:port"` as a cluster of one endpoint, with the config
 * layer's cluster defaults (connect timeout, keepalive, backoff, retries),
 * named after the address as errors and logs have always named it.
 */
function singleEndpointCluster(target: UpstreamTarget, resolved: ResolvedOptions): ClusterOptions {
  const cluster = defaultClusterOptions(target.authority);
  return { ...cluster, name: target.authority, maxStreamsPerConnection: resolved.maxStreamsPerConnection };
}

/**
 * The data port's URL for an OpenAPI document served elsewhere (the admin
 * port): the listening port under the plugin's prefix, on localhost when
 * the bridge listens on every address (the name clients use is not known).
 */
function dataPortServer(fastify: FastifyInstance): string[] | undefined {
  const address = fastify.server.address();
  if (address === null || typeof address !== "object") return undefined;
  const any = address.address === "0.0.0.0" || address.address === "::";
  const host = any ? "localhost" : address.family === "IPv6" ? `[${address.address}]` : address.address;
  const scheme = (fastify.server as unknown) instanceof TlsServer ? "https" : "http";
  return [`${scheme}://${host}:${address.port}${fastify.prefix}`];
}

/** Length of the plugin's prefix plus the slash, from the route ("/rpc/*"). */
function prefixLength(request: FastifyRequest): number {
  const url = request.routeOptions.url;
  return url === undefined ? 1 : url.length - 1;
}
