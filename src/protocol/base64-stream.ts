/**
 * gRPC-Web text mode: the byte stream travels as base64. Clients encode each
 * message on its own, so padding may appear in the middle of a body, and a
 * chunk may end anywhere, even inside a 4-character group.
 */

const base64Chars = /^[A-Za-z0-9+/=]*$/;

/** Decodes base64 that arrives in pieces; padded segments may follow each other. */
export class Base64StreamDecoder {
  private pending = "";

  /**
   * Decodes what can be decoded so far. Returns undefined when the text is
   * not base64 (after removing whitespace).
   */
  push(chunk: Buffer): Buffer | undefined {
    let text = this.pending + chunk.toString("latin1");
    // Only ASCII whitespace: the body is read as latin1, where /\s/ would
    // also match 0xA0 and let a non-base64 byte through.
    if (/[\t\n\r ]/.test(text)) text = text.replace(/[\t\n\r ]+/g, "");
    if (!base64Chars.test(text)) return undefined;
    const usable = text.length - (text.length % 4);
    this.pending = text.slice(usable);
    return decodeGroups(text.slice(0, usable));
  }

  /** True when no partial 4-character group is left over. */
  get complete(): boolean {
    return this.pending.length === 0;
  }
}

/** Decodes whole 4-character groups, restarting after every padded group. */
function decodeGroups(text: string): Buffer | undefined {
  const firstPad = text.indexOf("=");
  if (firstPad < 0) return Buffer.from(text, "base64");
  const parts: Buffer[] = [];
  let start = 0;
  while (start < text.length) {
    const pad = text.indexOf("=", start);
    if (pad < 0) {
      parts.push(Buffer.from(text.slice(start), "base64"));
      break;
    }
    // A padded group ends at the next multiple of 4 from the segment start.
    const end = start + Math.ceil((pad - start + 1) / 4) * 4;
    const segment = text.slice(start, end);
    if (!/^[^=]*={1,2}$/.test(segment) || (pad - start) % 4 < 2) return undefined;
    parts.push(Buffer.from(segment, "base64"));
    start = end;
  }
  return Buffer.concat(parts);
}
