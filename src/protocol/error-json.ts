import type { ConnectError } from "@connectrpc/connect";
import { errorToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

/** The Connect error body: `{"code","message","details":[{type,value}]}`. */
export function connectErrorJson(error: ConnectError): Uint8Array {
  return errorToJsonBytes(error, undefined);
}

/**
 * The JSON payload of a Connect end-stream message: the error, if any, and
 * the trailers as `metadata` (every value a list, so repeated trailers keep
 * their multiplicity — connect-es's own helper joins them).
 */
export function connectEndStreamJson(
  metadata: Record<string, string[]> | undefined,
  error: ConnectError | undefined,
): Buffer {
  const endStream: { error?: unknown; metadata?: Record<string, string[]> } = {};
  if (error !== undefined) endStream.error = errorToJson(error, undefined);
  if (metadata !== undefined) endStream.metadata = metadata;
  return Buffer.from(JSON.stringify(endStream));
}

/**
 * Reads grpc-status, grpc-message (percent-decoded) and
 * grpc-status-details-bin (a google.rpc.Status whose details become Connect
 * error details) from a trailer block or a trailers-only header block.
 * Returns undefined for status 0.
 */
export function grpcStatusError(block: Headers): ConnectError | undefined {
  const message = block.get("grpc-message");
  if (message !== null && !percentDecodable(message)) {
    // gRPC: a message that does not decode is delivered as it came, never an
    // error. findTrailerError would throw URIError (uncaught, in an event
    // handler); encoded once more, its decoding gives the raw text back.
    block.set("grpc-message", encodeURIComponent(message));
  }
  return findTrailerError(block);
}

function percentDecodable(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * grpc-status, grpc-message (percent-encoded) and, when the error has
 * details, grpc-status-details-bin, for a status the bridge reports itself.
 */
export function grpcStatusHeaders(error: ConnectError | undefined): Record<string, string> {
  const block: Record<string, string> = {};
  setTrailerStatus(new Headers(), error).forEach((value, name) => {
    if (name.startsWith("grpc-")) block[name] = value;
  });
  return block;
}
