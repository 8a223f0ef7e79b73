/**
 * The parts of a Connect request head that unary and streaming calls share:
 * protocol version, timeout, metadata and compression.
 */
import type { CallHead } from "../call.js";
import { copyRequestMetadata } from "../protocol/metadata.js";
import { parseConnectTimeout } from "../protocol/timeout.js";
import { acceptableEncodings } from "../protocol/compression.js";
import { Code, ConnectError } from "../protocol/status.js";
import type { BridgeContext, Exchange } from "./exchange.js";

interface HeadInput {
  codec: string;
  /** Coding of the request message(s), from Content-Encoding, Connect-Content-Encoding or the GET query. */
  requestEncoding: string | undefined;
  /** The client's Accept-Encoding or Connect-Accept-Encoding. */
  acceptEncoding: string | undefined;
  /** A GET request carries its protocol version in the query, checked there. */
  isGet: boolean;
}

/** Builds the CallHead, or the ConnectError the request deserves. */
export function connectCallHead(ctx: BridgeContext, exchange: Exchange, input: HeadInput): CallHead | ConnectError {
  const headers = exchange.req.headers;
  const version = headers["connect-protocol-version"];
  if (!input.isGet) {
    if (version === undefined && ctx.options.requireConnectProtocolHeader) {
      return new ConnectError("missing required header: set Connect-Protocol-Version to 1", Code.InvalidArgument);
    }
    if (version !== undefined && version !== "1") {
      return new ConnectError(`Connect-Protocol-Version must be "1": got "${version}"`, Code.InvalidArgument);
    }
  }
  const timeoutValue = headers["connect-timeout-ms"];
  const timeout = parseConnectTimeout(Array.isArray(timeoutValue) ? timeoutValue[0] : timeoutValue);
  if (timeout instanceof ConnectError) return timeout;

  let requestEncoding = input.requestEncoding?.trim().toLowerCase();
  if (requestEncoding === "identity" || requestEncoding === "") requestEncoding = undefined;
  if (requestEncoding !== undefined && !ctx.options.acceptCompression.includes(requestEncoding)) {
    return new ConnectError(
      `unknown compression "${requestEncoding}": supported encodings are ${[...ctx.options.acceptCompression, "identity"].join(", ")}`,
      Code.Unimplemented,
    );
  }
  const metadata = {};
  copyRequestMetadata(exchange.req.rawHeaders, metadata);
  return {
    path: exchange.path,
    codec: input.codec,
    metadata,
    timeoutMs: timeout,
    requestEncoding,
    // A client that names no accepted codings accepts the one it used.
    acceptEncoding: acceptableEncodings(input.acceptEncoding ?? requestEncoding, ctx.options.acceptCompression),
  };
}
