/**
 * The Fastify plugin: one catch-all route per HTTP method the protocols use,
 * raw body streams (no parsing), a call pipeline per cluster, and a dispatch
 * to the client protocol the request is classified as (src/inbound/classify.ts).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import fastifyCors from "@fastify/cors";
import { cors as connectCors } from "@connectrpc/connect";
import { resolveOptions, type GrpcBridgeOptions, type ResolvedOptions } from "./options.js";
import type { Upstream } from "./upstream/upstream.js";
import type { UpstreamTarget } from "./upstream/target.js";
import type { ClusterOptions } from "./upstream/cluster-options.js";
import { createCluster } from "./upstream/cluster.js";
import { refusedCall, type StartCall } from "./call.js";
import { upstreamStartCall } from "./upstream/start-call.js";
import { defaultClusterOptions } from "./config/deployment.js";
import { Router } from "./routing/router.js";
import { Code, ConnectError, codeFromUpstreamHttpStatus } from "./protocol/status.js";
import { exchangeFor, type BridgeContext } from "./inbound/exchange.js";
import { classifyRequest, httpRefusal, negotiationFailure, refuse, unknownProcedure } from "./inbound/classify.js";
import { BridgeSchema } from "./schema/schema.js";
import { reflectionRefused } from "./schema/reflection-gate.js";
import { withTranscoding } from "./schema/transcode.js";
import { PassthroughHints, withPassthroughHints } from "./schema/passthrough-hint.js";

/** `package.Service/Method`, package optional, as gRPC names procedures. */
const procedurePath = /^[A-Za-z_][A-Za-z0-9_.]*\/[A-Za-z_][A-Za-z0-9_]*$/;

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
  // An Upstream handed in belongs to the caller; ones built here are closed here.
  const owned: Upstream[] = [];
  // One schema for every cluster; reflection is cached per Upstream inside it.
  const schema =
    resolved.schema === undefined
      ? undefined
      : new BridgeSchema(resolved.schema, (level, fields, message) => fastify.log[level](fields, message), resolved.maxResponseBytes);
  const limits = { maxResponseMessageBytes: resolved.maxResponseBytes };
  const hintLog = (fields: Record<string, unknown>, message: string) => fastify.log.warn(fields, message);
  // One cluster's pipeline: transcoding only when a schema is configured
  // (bound to the cluster's Upstream, whose reflection it asks), else a
  // layer that names the missing schema in the log; then the upstream.
  const callsTo = (upstream: Upstream): StartCall => {
    const hints = new PassthroughHints(upstream.name, hintLog);
    const layer = schema === undefined ? withPassthroughHints(hints) : withTranscoding(schema, upstream, hints, resolved.maxRequestBytes);
    return layer(upstreamStartCall(upstream, limits));
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
      methods: [...connectCors.allowedMethods],
      allowedHeaders: [...connectCors.allowedHeaders, ...cors.allowedHeaders],
      exposedHeaders: [...connectCors.exposedHeaders, ...cors.exposedHeaders],
      maxAge: cors.maxAgeSeconds,
      credentials: cors.credentials,
    });
  } else {
    methods.push("OPTIONS");
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
      dispatch(resolved, ctx, router, prefix, request, reply);
    },
  });
  // Errors Fastify raises before the handler runs (a Content-Type it cannot
  // even parse, ...) are refused in the client's protocol, not in Fastify's own JSON.
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    reply.hijack();
    const failure = new ConnectError(error.message, status === 415 ? Code.Unknown : codeFromUpstreamHttpStatus(status));
    refuse(exchangeFor(request, reply), classifyRequest(request.raw), httpRefusal(failure, status, resolved));
  });
  fastify.addHook("onClose", async () => {
    await Promise.all(owned.map((upstream) => upstream.close()));
  });
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
  prefix: number,
  request: FastifyRequest,
  reply: FastifyReply,
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
  const procedure = url.slice(prefix, query < 0 ? url.length : query);
  const exchange = exchangeFor(
    request,
    reply,
    "/" + procedure,
    options.cors !== undefined && req.headers.origin !== undefined,
  );
  const classified = classifyRequest(req);
  try {
    if (!procedurePath.test(procedure)) {
      refuse(exchange, classified, unknownProcedure(`no procedure at path "${exchange.path}": expected /package.Service/Method`));
      return;
    }
    if (reflectionRefused(options.reflectionPassthrough, procedure)) {
      refuse(
        exchange,
        classified,
        unknownProcedure(`${exchange.path}: server reflection is not served through this bridge (option reflectionPassthrough)`),
      );
      return;
    }
    let ctx = base;
    if (router !== undefined) {
      const routed = router.route(exchange.path, (req.headers[":authority"] as string | undefined) ?? req.headers.host);
      if (routed === undefined) {
        // Unrouted and denied calls get the same answer: a denied service is
        // indistinguishable from one that does not exist.
        refuse(exchange, classified, unknownProcedure(`procedure ${exchange.path} is not served here`));
        return;
      }
      ctx = routed;
    }
    const failure = negotiationFailure(classified, req, ctx.options);
    if (failure !== undefined) {
      refuse(exchange, classified, failure);
      return;
    }
    classified.protocol.start(ctx, exchange, classified, query < 0 ? "" : url.slice(query + 1));
  } catch (error) {
    request.log.error({ err: error }, "bridge failed to handle a call");
    refuse(exchange, classified, refusedCall(new ConnectError("internal bridge error", Code.Internal)));
  }
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

/** Length of the plugin's prefix plus the slash, from the route ("/rpc/*"). */
function prefixLength(request: FastifyRequest): number {
  const url = request.routeOptions.url;
  return url === undefined ? 1 : url.length - 1;
}
