/**
 * Requests Node's HTTP/1 parser rejects before Fastify sees them (malformed
 * request lines, oversized headers, header timeouts) still deserve a
 * Connect-shaped answer, not Fastify's `{"statusCode",...}` JSON.
 */
import type { Socket } from "node:net";
import type { ServerResponse } from "node:http";
import { http } from "./node-http.js";
import { Code, ConnectError } from "./protocol/status.js";
import { connectErrorJson } from "./protocol/error-json.js";

/** A Fastify `clientErrorHandler` that answers with Connect error JSON. */
export function connectClientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  // Before any response head, a plain error answer below is still well-formed.
  if (inFlight != null && !inFlight.writableFinished && inFlight.headersSent) {
    if (inFlight.req.complete) {
      // The call before it was read whole; bytes after it (a pipelined
      // request) went bad. Writing an answer now would land inside the
      // response still being written: let it finish, then close.
      inFlight.once("close", () => socket.destroy());
    } else {
      // The call's own body broke off: cut it, which cancels its upstream.
      socket.destroy();
    }
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
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`,
        "latin1",
      ),
      body,
    ]),
  );
}
