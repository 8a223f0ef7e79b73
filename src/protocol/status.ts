/**
 * Status codes and their HTTP mappings. Everything from
 * `@connectrpc/connect/protocol-*` is imported inside src/protocol/ only:
 * those helpers carry no semver promise, so an upgrade touches one folder.
 */
import { constants as h2 } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  codeToHttpStatus,
  codeToString,
  codeFromString,
} from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus as grpcCodeFromHttpStatus } from "@connectrpc/connect/protocol-grpc";

export { Code, ConnectError, codeToHttpStatus, codeToString, codeFromString };

/**
 * Whether a "value or the ConnectError it became" result is the error. Not
 * `instanceof ConnectError`: connect-es gives ConnectError a
 * Symbol.hasInstance (to know errors from other copies of the package),
 * which makes every such check a call; a unary call makes four. The only
 * Error these results hold is the ConnectError the bridge made.
 */
export function isErrorResult<T>(result: T | ConnectError): result is ConnectError {
  return result instanceof Error;
}

/**
 * The code for a gRPC response that carried no grpc-status, derived from its
 * HTTP status as gRPC's http-grpc-status-mapping.md describes.
 */
export function codeFromUpstreamHttpStatus(status: number): Code {
  return grpcCodeFromHttpStatus(status);
}

/** The code for an HTTP/2 stream reset by the upstream (RST_STREAM). */
export function codeFromResetCode(rstCode: number): Code {
  switch (rstCode) {
    case h2.NGHTTP2_REFUSED_STREAM:
      // The upstream application never saw the call.
      return Code.Unavailable;
    case h2.NGHTTP2_CANCEL:
      return Code.Canceled;
    case h2.NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.ResourceExhausted;
    case h2.NGHTTP2_INADEQUATE_SECURITY:
      return Code.PermissionDenied;
    default:
      return Code.Internal;
  }
}

const resetCodeNames = new Map<number, string>(
  Object.entries(h2)
    .filter(
      ([name, value]) =>
        typeof value === "number" &&
        name.startsWith("NGHTTP2_") &&
        /^NGHTTP2_(NO_ERROR|PROTOCOL_ERROR|INTERNAL_ERROR|FLOW_CONTROL_ERROR|SETTINGS_TIMEOUT|STREAM_CLOSED|FRAME_SIZE_ERROR|REFUSED_STREAM|CANCEL|COMPRESSION_ERROR|CONNECT_ERROR|ENHANCE_YOUR_CALM|INADEQUATE_SECURITY|HTTP_1_1_REQUIRED)$/.test(
          name,
        ),
    )
    .map(([name, value]) => [value as number, name.slice("NGHTTP2_".length)]),
);

/** The RFC 9113 name of a reset code, for error messages. */
export function resetCodeName(rstCode: number): string {
  return resetCodeNames.get(rstCode) ?? `0x${rstCode.toString(16)}`;
}
