/**
 * Requests Node's HTTP/1 parser rejects before Fastify sees them (malformed
 * request lines, oversized headers, header timeouts) still deserve a
 * Connect-shaped answer, not Fastify's `{"statusCode",...}` JSON.
 */
import type { Socket } from "node:net";
import { STATUS_CODES, type ServerResponse } from "node:http";
import { Code, ConnectError } from "./protocol/status.js";
import { connectErrorJson } from "./protocol/error-json.js";

/** A Fastify `clientErrorHandler` that answers with Connect error JSON. */
export function connectClientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  // A response already under way on this connection (a pipelined request
  // went bad behind a streaming call): writing an HTTP response now would
  // land inside its body. Let that response finish, then close.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (inFlight !== undefined && inFlight !== null && !inFlight.writableFinished) {
    inFlight.once("close", () => socket.destroy());
    return;
  }
  let status = 400;
  let connectError = new ConnectError("malformed HTTP request", Code.InvalidArgument);
  if (error.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    connectError = new ConnectError("request headers too large", Code.ResourceExhausted);
  } else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    status = 408;
    connectError = new ConnectError("request not received in time", Code.DeadlineExceeded);
  }
  const body = Buffer.from(connectErrorJson(connectError));
  socket.end(
    Buffer.concat([
      Buffer.from(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`,
        "latin1",
      ),
      body,
    ]),
  );
}
