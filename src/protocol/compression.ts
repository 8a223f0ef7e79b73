/**
 * Content codings. Where client and upstream agree, compressed messages pass
 * along untouched: Connect's Content-Encoding / Connect-Content-Encoding and
 * gRPC's grpc-encoding name the same codings, and the per-message flag means
 * the same thing in Connect streaming and gRPC. Where they do not, the bridge
 * converts, with node:zlib.
 */
import * as zlib from "node:zlib";
import { promisify } from "node:util";
import { Code, ConnectError } from "./status.js";

/** Codings the bridge itself can compress and decompress. */
export const convertibleEncodings: readonly string[] = ["gzip", "deflate", "br"];

const inflaters = {
  gzip: promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
} as Record<string, (data: Uint8Array, options: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>>;
const deflaters = {
  gzip: (data: Uint8Array) => promisify(zlib.gzip)(data),
  deflate: (data: Uint8Array) => promisify(zlib.deflate)(data),
  // Quality 4: most of brotli's gain at a small part of its default (11) cost.
  br: (data: Uint8Array) =>
    promisify(zlib.brotliCompress)(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }),
} as Record<string, (data: Uint8Array) => Promise<Buffer>>;

/**
 * Decompresses one message, stopping as soon as the output passes `maxBytes`
 * (a decompression bomb is stopped while inflating, not after).
 * `what` names the message in errors ("request message", ...).
 */
export async function decompress(coding: string, data: Uint8Array, maxBytes: number, what: string, corruptCode: Code): Promise<Buffer> {
  const inflate = inflaters[coding];
  if (inflate === undefined) throw new ConnectError(`cannot decompress coding "${coding}"`, Code.Internal);
  try {
    return await inflate(data, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
      throw new ConnectError(`${what} decompresses to more than the limit of ${maxBytes} bytes`, Code.ResourceExhausted);
    }
    throw new ConnectError(`${what} is not valid ${coding}: ${(error as Error).message}`, corruptCode);
  }
}

/** Compresses one message with a coding the bridge can write. */
export function compress(coding: string, data: Uint8Array): Promise<Buffer> {
  const deflate = deflaters[coding];
  if (deflate === undefined) throw new ConnectError(`cannot compress with coding "${coding}"`, Code.Internal);
  return deflate(data);
}

/** The first coding in the client's list that the bridge can write and is allowed. */
export function pickResponseCoding(clientAccepts: readonly string[], allowed: readonly string[]): string | undefined {
  return clientAccepts.find((c) => allowed.includes(c) && convertibleEncodings.includes(c));
}

/** Lower-cased codings from an Accept-Encoding-style list, q-values ignored. */
export function parseEncodingList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(",")) {
    const [name, ...params] = part.split(";");
    const coding = name.trim().toLowerCase();
    if (coding === "" || params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p))) continue;
    out.push(coding);
  }
  return out;
}

/** Codings both the client and the bridge accept, for grpc-accept-encoding. */
export function acceptableEncodings(clientAccepts: readonly string[], supported: readonly string[]): string | undefined {
  const both = clientAccepts.filter((c) => supported.includes(c));
  return both.length > 0 ? both.join(",") : undefined;
}
