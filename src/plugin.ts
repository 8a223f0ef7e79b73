/**
 * The Fastify plugin: one catch-all route per HTTP method the protocols use,
 * raw body streams (no parsing), and a dispatch on method and content type to
 * the inbound adapter that speaks the client's protocol.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import fastifyCors from "@fastify/cors";
import { cors as connectCors } from "@connectrpc/connect";
import { resolveOptions, type GrpcBridgeOptions, type ResolvedOptions } from "./options.js";
import type { Upstream } from "./upstream/upstream.js";
import type { UpstreamTarget } from "./upstream/target.js";
import type { ClusterOptions } from "./upstream/cluster-options.js";
import { createCluster } from "./upstream/cluster.js";
import { upstreamStartCall } from "./upstream/start-call.js";
import { resolveDeployment } from "./config/deployment.js";
import { Router } from "./routing/router.js";
import {
  connectContentTypeFor,
  grpcWebContentTypeFor,
  parseConnectContentType,
  parseGrpcContentType,
  parseGrpcWebContentType,
} from "./protocol/content-type.js";
import { Code, ConnectError, codeFromUpstreamHttpStatus } from "./protocol/status.js";
import { exchangeFor, type BridgeContext, type Exchange } from "./inbound/exchange.js";
import { writeConnectError } from "./inbound/connect-error-response.js";
import { connectUnaryGet, connectUnaryPost } from "./inbound/connect-unary.js";
import { connectStream } from "./inbound/connect-stream.js";
import { grpcWebCall, writeGrpcWebError } from "./inbound/grpc-web.js";
import { grpcCall, writeGrpcError } from "./inbound/grpc.js";
import { BridgeSchema } from "./schema/schema.js";
import { reflectionRefused } from "./schema/reflection-gate.js";

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
  let ctx: BridgeContext;
  let router: Router<BridgeContext> | undefined;
  if (target === undefined) {
    // Clusters and routes: one context per cluster, built once, so routing a
    // call allocates nothing.
    const contexts = new Map<string, BridgeContext>();
    for (const cluster of resolved.deployment!.clusters) {
      const upstream = createCluster(cluster, fastify.log, limits);
      owned.push(upstream);
      contexts.set(cluster.name, { startCall: upstreamStartCall(upstream, limits), upstream, options: resolved, schema });
    }
    router = new Router(resolved.deployment!.routes, contexts);
    ctx = contexts.values().next().value!;
  } else if ("request" in target) {
    ctx = { startCall: upstreamStartCall(target, limits), upstream: target, options: resolved, schema };
  } else {
    const upstream = createCluster(singleEndpointCluster(target, resolved), fastify.log, limits);
    owned.push(upstream);
    ctx = { startCall: upstreamStartCall(upstream, limits), upstream, options: resolved, schema };
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
  fastify.route({
    // Every method, so that the wrong one gets a 405 in the client's protocol, not a 404.
    method: methods,
    url: "/*",
    handler: (request, reply) => dispatch(ctx, router, request, reply),
  });
  // Errors Fastify raises before the handler runs (a Content-Type it cannot
  // even parse, ...) get a Connect error, not Fastify's own JSON.
  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    reply.hijack();
    writeConnectError(
      exchangeFor(request, reply),
      new ConnectError(error.message, status === 415 ? Code.Unknown : codeFromUpstreamHttpStatus(status)),
      undefined,
      status,
    );
  });
  fastify.addHook("onClose", async () => {
    await Promise.all(owned.map((upstream) => upstream.close()));
  });
}

/**
 * Hands the call to the adapter for its protocol. `router` is undefined with
 * a single upstream (`ctx`): then no per-call routing work is done at all.
 */
function dispatch(
  base: BridgeContext,
  router: Router<BridgeContext> | undefined,
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
  const procedure = url.slice(prefixLength(request), query < 0 ? url.length : query);
  const exchange = exchangeFor(
    request,
    reply,
    "/" + procedure,
    base.options.cors !== undefined && req.headers.origin !== undefined,
  );
  try {
    const contentTypeHeader = req.headers["content-type"];
    const grpcCodec = req.httpVersionMajor === 2 ? parseGrpcContentType(contentTypeHeader) : undefined;
    if (!procedurePath.test(procedure)) {
      const error = new ConnectError(
        `no procedure at path "${exchange.path}": expected /package.Service/Method`,
        Code.Unimplemented,
      );
      writeUnimplemented(exchange, grpcCodec, error);
      return;
    }
    if (reflectionRefused(base.options, procedure)) {
      const error = new ConnectError(
        `${exchange.path}: server reflection is not served through this bridge (option reflectionPassthrough)`,
        Code.Unimplemented,
      );
      writeUnimplemented(exchange, grpcCodec, error);
      return;
    }
    let ctx = base;
    if (router !== undefined) {
      const routed = router.route(exchange.path, (req.headers[":authority"] as string | undefined) ?? req.headers.host);
      if (routed === undefined) {
        // Unrouted and denied calls get the same answer: a denied service is
        // indistinguishable from one that does not exist.
        writeUnimplemented(exchange, grpcCodec, new ConnectError(`procedure ${exchange.path} is not served here`, Code.Unimplemented));
        return;
      }
      ctx = routed;
    }
    if (req.method === "GET") {
      connectUnaryGet(ctx, exchange, query < 0 ? "" : url.slice(query + 1));
      return;
    }
    if (req.method !== "POST") {
      req.resume();
      exchange.baseHeaders.allow = "GET, POST";
      writeConnectError(
        exchange,
        new ConnectError(`HTTP method ${req.method} is not allowed: use POST (or GET for unary calls)`, Code.Unknown),
        undefined,
        405,
      );
      return;
    }
    if (grpcCodec !== undefined) {
      // Native gRPC passes through whatever codec the upstream speaks.
      grpcCall(ctx, exchange, grpcCodec);
      return;
    }
    const grpcWeb = parseGrpcWebContentType(contentTypeHeader);
    if (grpcWeb !== undefined && ctx.options.codecs.includes(grpcWeb.codec)) {
      grpcWebCall(ctx, exchange, grpcWeb);
      return;
    }
    if (parseGrpcContentType(contentTypeHeader) !== undefined) {
      req.resume();
      writeConnectError(
        exchange,
        new ConnectError("gRPC (application/grpc) needs HTTP/2: connect with h2c or TLS (ALPN h2)", Code.Unknown),
        undefined,
        415,
      );
      return;
    }
    const contentType = parseConnectContentType(contentTypeHeader);
    if (contentType === undefined || !ctx.options.codecs.includes(contentType.codec)) {
      req.resume();
      writeConnectError(
        exchange,
        new ConnectError(
          `unsupported content-type "${req.headers["content-type"] ?? ""}": expected one of ${acceptedContentTypes(ctx)}`,
          Code.Unknown,
        ),
        { "accept-post": acceptedContentTypes(ctx) },
        415,
      );
      return;
    }
    if (contentType.stream) connectStream(ctx, exchange, contentType.codec);
    else connectUnaryPost(ctx, exchange, contentType.codec);
  } catch (error) {
    request.log.error({ err: error }, "bridge failed to handle a call");
    writeConnectError(exchange, new ConnectError("internal bridge error", Code.Internal));
  }
}

/**
 * `unimplemented` in the client's protocol, touching no upstream: Connect
 * gets HTTP 404 as for an unknown procedure; gRPC and gRPC-Web get
 * grpc-status 12.
 */
function writeUnimplemented(exchange: Exchange, grpcCodec: string | undefined, error: ConnectError): void {
  if (grpcCodec !== undefined) {
    writeGrpcError(exchange, grpcCodec, error);
    return;
  }
  const req = exchange.req;
  const grpcWeb = req.method === "POST" ? parseGrpcWebContentType(req.headers["content-type"]) : undefined;
  if (grpcWeb !== undefined) {
    writeGrpcWebError(exchange, grpcWeb, error);
    return;
  }
  req.resume();
  writeConnectError(exchange, error, undefined, 404);
}

/**
 * `upstream: "host:port"` as a cluster of one endpoint, with the config
 * layer's cluster defaults (connect timeout, keepalive, backoff, retries),
 * named after the address as errors and logs have always named it.
 */
function singleEndpointCluster(target: UpstreamTarget, resolved: ResolvedOptions): ClusterOptions {
  const [cluster] = resolveDeployment(
    [{ name: "upstream", endpoints: [target.authority], maxStreamsPerConnection: resolved.maxStreamsPerConnection }],
    undefined,
    "options",
  ).clusters;
  return { ...cluster!, name: target.authority };
}

/** Length of the plugin's prefix plus the slash, from the route ("/rpc/*"). */
function prefixLength(request: FastifyRequest): number {
  return request.routeOptions.url === undefined ? 1 : request.routeOptions.url.length - 1;
}

function acceptedContentTypes(ctx: BridgeContext): string {
  const unary = ctx.options.codecs.map((codec) => connectContentTypeFor(false, codec));
  const stream = ctx.options.codecs.map((codec) => connectContentTypeFor(true, codec));
  const grpcWeb = ctx.options.codecs.flatMap((codec) => [
    grpcWebContentTypeFor({ text: false, codec }),
    grpcWebContentTypeFor({ text: true, codec }),
  ]);
  return [...unary, ...stream, ...grpcWeb].join(", ");
}
