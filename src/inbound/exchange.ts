/**
 * One HTTP request/response pair as an inbound adapter sees it, and what the
 * adapters share: the upstream, the options, and how a call gets cancelled
 * when the client goes away.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { ResolvedOptions } from "../options.js";
import type { UpstreamSession } from "../upstream/session.js";
import type { GrpcCall } from "../upstream/grpc-call.js";
import { Code, ConnectError } from "../protocol/status.js";

export interface BridgeContext {
  session: UpstreamSession;
  options: ResolvedOptions;
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers the host app's hooks set on the reply (CORS, request ids, ...). */
  baseHeaders: OutgoingHttpHeaders;
  /** `/package.Service/Method`, without any plugin prefix. */
  path: string;
}

/**
 * Cancels the upstream call when the client goes away before the response is
 * complete. Watches the response, not the request: IncomingMessage emits
 * 'close' as soon as the body is read, which says nothing about the client.
 */
export function cancelOnDisconnect(exchange: Exchange, call: GrpcCall): void {
  exchange.res.once("close", () => {
    if (!exchange.res.writableFinished) {
      call.cancel(new ConnectError("client disconnected", Code.Canceled));
    }
  });
}

/** True once the response can no longer be written (client gone or done). */
export function responseClosed(res: ServerResponse): boolean {
  return res.writableEnded || res.destroyed;
}
