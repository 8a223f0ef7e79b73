/**
 * Options of the bridge plugin, their defaults, and their validation.
 */
import { defaultEncodings } from "./protocol/compression.js";
import { parseUpstreamTarget, type UpstreamTarget } from "./upstream/target.js";

/** Options for {@link grpcBridge} and {@link createBridge}. */
export interface GrpcBridgeOptions {
  /**
   * The gRPC server to forward to, over cleartext HTTP/2 (h2c):
   * `"127.0.0.1:50051"` or `"http://127.0.0.1:50051"`.
   */
  upstream: string | URL;
  /**
   * Largest message accepted in either direction, in bytes, as it travels
   * (compressed size when compressed). Unary bodies are buffered up to this
   * size. Default: 4 MiB, gRPC's usual default.
   */
  maxMessageBytes?: number;
  /**
   * Content codings clients may use for requests and ask for in responses.
   * Compressed messages pass through to and from the upstream untouched.
   * Default: `["gzip"]`.
   */
  acceptCompression?: string[];
  /**
   * Reject Connect requests without `Connect-Protocol-Version: 1` (and GET
   * requests without `connect=v1`). Default: false, so plain `curl` works.
   */
  requireConnectProtocolHeader?: boolean;
}

export interface ResolvedOptions {
  upstream: UpstreamTarget;
  maxMessageBytes: number;
  acceptCompression: readonly string[];
  requireConnectProtocolHeader: boolean;
}

export const defaultMaxMessageBytes = 4 * 1024 * 1024;

/** Applies defaults and checks every option; throws a TypeError naming the bad one. */
export function resolveOptions(options: GrpcBridgeOptions): ResolvedOptions {
  if (options === null || typeof options !== "object" || options.upstream === undefined) {
    throw new TypeError('connect-grpc-bridge: option "upstream" is required, e.g. { upstream: "127.0.0.1:50051" }');
  }
  const maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0 || maxMessageBytes > 0xffffffff) {
    throw new TypeError(
      `connect-grpc-bridge: option "maxMessageBytes" must be a positive integer below 2^32, got ${maxMessageBytes}`,
    );
  }
  const acceptCompression = (options.acceptCompression ?? defaultEncodings).map((e) => e.toLowerCase());
  for (const encoding of acceptCompression) {
    if (!/^[a-z0-9_-]+$/.test(encoding) || encoding === "identity") {
      throw new TypeError(`connect-grpc-bridge: option "acceptCompression" has an invalid coding "${encoding}"`);
    }
  }
  return {
    upstream: parseUpstreamTarget(options.upstream),
    maxMessageBytes,
    acceptCompression,
    requireConnectProtocolHeader: options.requireConnectProtocolHeader ?? false,
  };
}
