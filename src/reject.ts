/**
 * Lets a host app's hook (auth, rate limits) turn a call away with an error
 * in the caller's own protocol: a Connect error JSON, a gRPC-Web status, or a
 * native gRPC trailers-only status — whatever the request speaks.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { Code, ConnectError } from "./protocol/status.js";
import { parseGrpcContentType, parseGrpcWebContentType } from "./protocol/content-type.js";
import { exchangeFor } from "./inbound/exchange.js";
import { writeConnectError } from "./inbound/connect-error-response.js";
import { writeGrpcWebError } from "./inbound/grpc-web.js";
import { writeGrpcError } from "./inbound/grpc.js";

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
  const req = request.raw;
  const exchange = exchangeFor(request, reply);
  const error = new ConnectError(message, code);
  const contentType = req.headers["content-type"];
  const grpcCodec = req.httpVersionMajor === 2 ? parseGrpcContentType(contentType) : undefined;
  if (grpcCodec !== undefined) return writeGrpcError(exchange, grpcCodec, error);
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb !== undefined) return writeGrpcWebError(exchange, grpcWeb, error);
  req.resume();
  writeConnectError(exchange, error);
}
