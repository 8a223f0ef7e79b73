/**
 * Lets a host app's hook (auth, rate limits) turn a call away with an error
 * in the caller's own protocol: a Connect error JSON, a gRPC-Web status, or a
 * native gRPC trailers-only status — whatever the request speaks.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { refusedCall } from "./call.js";
import { Code, ConnectError } from "./protocol/status.js";
import { exchangeFor } from "./inbound/exchange.js";
import { classifyRequest, refuse } from "./inbound/classify.js";
import { observerOf, requestedPath } from "./observability/request-observer.js";

export { Code };

/**
 * Answers the request with `code` and `message` in the client's protocol and
 * ends Fastify's handling of it. For use in hooks:
 *
 * @example
 * app.addHook("onRequest", async (request, reply) => {
 *   if (!authorized(request)) rejectCall(request, reply, Code.Unauthenticated, "missing token");
 * });
 */
export function rejectCall(request: FastifyRequest, reply: FastifyReply, code: Code, message: string): void {
  reply.hijack();
  const classified = classifyRequest(request.raw);
  const end = refusedCall(new ConnectError(message, code));
  // The access log of the bridge the request was routed to, when it keeps one.
  observerOf(request)?.begin(request.raw, reply.raw, requestedPath(request), classified.protocol.name).refused(end);
  refuse(exchangeFor(request, reply), classified, end);
}
