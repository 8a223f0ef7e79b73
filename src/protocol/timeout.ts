import { ConnectError } from "@connectrpc/connect";
import { parseTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeoutValue } from "@connectrpc/connect/protocol-grpc";

/** Connect caps Connect-Timeout-Ms at 10 digits; we accept all of them. */
const maxConnectTimeoutMs = 9_999_999_999;

/**
 * Parses Connect-Timeout-Ms. Returns the timeout in milliseconds, undefined if
 * the header is absent, or a ConnectError (invalid_argument) if malformed.
 */
export function parseConnectTimeout(
  value: string | undefined,
): number | undefined | ConnectError {
  if (value === undefined) return undefined;
  const parsed = parseTimeout(value, maxConnectTimeoutMs);
  return parsed.error ?? parsed.timeoutMs;
}

/**
 * Encodes a timeout as grpc-timeout: at most 8 digits and a unit. Milliseconds
 * are exact up to 99,999,999 ms (~27 h); longer timeouts are rounded up to the
 * next coarser unit, which only lengthens the deadline the bridge itself
 * enforces anyway.
 */
export function grpcTimeoutHeader(timeoutMs: number): string {
  if (timeoutMs < 100_000_000) return `${timeoutMs}m`;
  const seconds = Math.ceil(timeoutMs / 1000);
  if (seconds < 100_000_000) return `${seconds}S`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 100_000_000) return `${minutes}M`;
  return `${Math.min(Math.ceil(minutes / 60), 99_999_999)}H`;
}

/**
 * Parses grpc-timeout (gRPC-Web requests carry it as is). Returns whole
 * milliseconds, rounded up so sub-millisecond deadlines do not become 0.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined | ConnectError {
  if (value === undefined) return undefined;
  const parsed = parseGrpcTimeoutValue(value, Number.MAX_SAFE_INTEGER);
  if (parsed.error) return parsed.error;
  return parsed.timeoutMs === undefined ? undefined : Math.ceil(parsed.timeoutMs);
}
