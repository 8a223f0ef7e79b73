/**
 * The gRPC-Web trailer frame: flag 0x80, then an HTTP/1-style header block
 * (`name: value\r\n` per entry, names lower case).
 */
import type { OutgoingHttpHeaders } from "node:http";
import { encodeEnvelope, flagTrailer } from "./envelope.js";

export function encodeTrailerFrame(block: OutgoingHttpHeaders): Buffer {
  let text = "";
  for (const name in block) {
    const value = block[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) text += `${name}: ${v}\r\n`;
    else text += `${name}: ${value}\r\n`;
  }
  return encodeEnvelope(flagTrailer, Buffer.from(text, "latin1"));
}
