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
  writeErrorResponse(exchange, connectErrorJson(error), "application/json", metadata, httpStatus);
}

/**
 * Writes a whole error response (`body` with its content type, the host's
 * headers and `metadata`), unless the response is closed; once a body has
 * started nothing well-formed can follow, so the connection is cut and the
 * client sees a failure instead of a truncated success. Shared by Connect
 * unary and REST, which differ only in the body.
 */
export function writeErrorResponse(
  exchange: Exchange,
  body: Uint8Array,
  contentType: string,
  metadata: OutgoingHttpHeaders | undefined,
  httpStatus: number,
): void {
  const { res } = exchange;
  if (responseClosed(res)) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: OutgoingHttpHeaders = { ...exchange.baseHeaders, ...metadata };
  headers["content-type"] = contentType;
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
