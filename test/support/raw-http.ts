/**
 * Raw HTTP/1.1 and HTTP/2 exchanges and Connect envelope helpers for wire-level tests.
 */
import * as http2 from "node:http2";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import {
  EchoRequestSchema,
  EchoResponseSchema,
  type EchoRequest,
  type EchoResponse,
} from "../../gen/bridge/test/v1/test_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export async function send(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array },
): Promise<RawResponse> {
  const res = await fetch(url, { method: init.method ?? "POST", headers: init.headers, body: init.body as BodyInit | undefined });
  const headers: Record<string, string> = {};
  res.headers.forEach((value, key) => (headers[key] = value));
  return { status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** One HTTP/2 exchange over h2c, as sent on the wire: status, headers, trailers (as Node gives them) and body. */
export async function h2Exchange(
  address: string,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  const session = http2.connect(`http://${address}`);
  try {
    // endStream false: Node would end a DELETE or GET at once, before its body.
    const stream = session.request(headers, { endStream: false });
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (response = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.end(body);
    await new Promise<void>((resolve, reject) => {
      stream.on("close", resolve);
      stream.on("error", reject);
    });
    return { status: Number(response[":status"]), headers: response, trailers, body: Buffer.concat(chunks) };
  } finally {
    session.close();
  }
}

export function echoRequest(init: MessageInitShape<typeof EchoRequestSchema>): Buffer {
  return Buffer.from(toBinary(EchoRequestSchema, create(EchoRequestSchema, init)));
}

export function decodeEchoResponse(bytes: Uint8Array): EchoResponse {
  return fromBinary(EchoResponseSchema, bytes);
}

export function envelope(flags: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([header, payload]);
}

export function splitFrames(body: Buffer): { flags: number; data: Buffer }[] {
  const frames: { flags: number; data: Buffer }[] = [];
  let pos = 0;
  while (pos < body.byteLength) {
    const length = body.readUInt32BE(pos + 1);
    frames.push({ flags: body[pos], data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  if (pos !== body.byteLength) throw new Error("body does not end on a frame boundary");
  return frames;
}

/** The end-stream frame of a Connect streaming response, parsed. */
export function endStream(body: Buffer): { error?: { code: string; message?: string; details?: unknown[] }; metadata?: Record<string, string[]> } {
  const frames = splitFrames(body);
  const last = frames[frames.length - 1];
  if (last === undefined || last.flags !== 2) throw new Error("no end-stream frame");
  return JSON.parse(last.data.toString("utf8"));
}

export type { EchoRequest };
