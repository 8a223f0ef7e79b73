/**
 * The status fields gRPC and gRPC-Web responses carry in their trailers (or
 * headers, when trailers-only).
 */
import type { CallEnd } from "../call.js";
import { grpcStatusHeaders } from "../protocol/error-json.js";

/**
 * The upstream's own status fields when the status is the upstream's (byte
 * for byte, details included); otherwise the bridge's, encoded by us.
 */
export function grpcStatusBlock(end: CallEnd): Record<string, string> {
  const trailers = end.trailers;
  const upstreamStatus = trailers?.["grpc-status"];
  if (upstreamStatus !== undefined && (end.error === undefined ? upstreamStatus === "0" : end.error.isWireError)) {
    const block: Record<string, string> = { "grpc-status": String(upstreamStatus) };
    for (const name of ["grpc-message", "grpc-status-details-bin"] as const) {
      const value = trailers![name];
      if (value !== undefined) block[name] = String(value);
    }
    return block;
  }
  return grpcStatusHeaders(end.error);
}
