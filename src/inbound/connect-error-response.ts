/**
 * Writes a Connect error as a unary response: HTTP status from the code,
 * `application/json` body. Used for upstream errors and the bridge's own.
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { CallEnd } from "../call.js";
import { connectErrorJson } from "../protocol/error-json.js";
import { codeToHttpStatus, type ConnectError } from "../protocol/status.js";
import { exposeHeaders, responseClosed, type Exchange } from "./exchange.js";

export function writeConnectError(
  exchange: Exchange,
  error: ConnectError,
  metadata?: OutgoingHttpHeaders,
  httpStatus = codeToHttpStatus(error.code),
): void {
  const { res } = exchange;
  if (responseClosed(res)) return;
  if (res.headersSent) {
    // Nothing well-formed can follow a started body; cut the connection so
    // the client sees a failure instead of a truncated success.
    res.destroy();
    return;
  }
  const body = connectErrorJson(error);
  const headers: OutgoingHttpHeaders = { ...exchange.baseHeaders, ...metadata };
  headers["content-type"] = "application/json";
  headers["content-length"] = body.byteLength;
  exposeHeaders(exchange, headers);
  res.writeHead(httpStatus, headers);
  res.end(body);
}

/**
 * A call's error end as Connect answers it outside a stream: the HTTP
 * status a layer asked for (`end.http`, e.g. 405 with Allow), 404 for a
 * procedure nobody knows, else the code's own status.
 */
export function writeConnectErrorEnd(exchange: Exchange, end: CallEnd, metadata?: OutgoingHttpHeaders): void {
  const http = end.http;
  const status = http?.status ?? (end.unknownProcedure ? 404 : codeToHttpStatus(end.error!.code));
  writeConnectError(exchange, end.error!, http?.headers === undefined ? metadata : { ...metadata, ...http.headers }, status);
}
