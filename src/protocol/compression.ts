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
// Quality 4: most of brotli's gain at a small part of its default (11) cost.
const brotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };
const deflaters = {
  gzip: (data: Uint8Array) => promisify(zlib.gzip)(data),
  deflate: (data: Uint8Array) => promisify(zlib.deflate)(data),
  br: (data: Uint8Array) => promisify(zlib.brotliCompress)(data, brotliOptions),
} as Record<string, (data: Uint8Array) => Promise<Buffer>>;
const syncDeflaters = {
  gzip: (data: Uint8Array) => zlib.gzipSync(data),
  deflate: (data: Uint8Array) => zlib.deflateSync(data),
  br: (data: Uint8Array) => zlib.brotliCompressSync(data, brotliOptions),
} as Record<string, (data: Uint8Array) => Buffer>;

/**
 * Messages smaller than this are compressed on the main thread. A trip
 * through zlib's threadpool costs more than compressing a small message
 * (1 KiB gzip, one core: 17 µs in place, 47-88 µs through the pool), and a
 * stream converts its messages one at a time, so the trips added up: a
 * server stream of 1 KiB messages compressed for a gzip client moved
 * 8.4 MB/s.
 */
const compressInPlaceBelowBytes = 16 * 1024;

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
  if (data.byteLength < compressInPlaceBelowBytes) {
    try {
      return Promise.resolve(syncDeflaters[coding](data));
    } catch (error) {
      return Promise.reject(error);
    }
  }
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
