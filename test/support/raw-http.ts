/**
 * Raw HTTP/1.1 exchanges and Connect envelope helpers for wire-level tests.
 */
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
