/**
 * The query of a Connect unary GET: `message`, `encoding`, `base64`,
 * `compression` and `connect`. Parsed from the raw URL, not by Fastify's
 * query parser: a message sent without base64 is percent-encoded binary that
 * must not pass through a UTF-8 string.
 */
import { Code, ConnectError } from "./status.js";

export interface ConnectGetQuery {
  message: Buffer;
  codec: string;
  compression: string | undefined;
}

/**
 * Parses the part of the URL after `?`. Returns a ConnectError for a query
 * the Connect protocol does not allow; `unsupportedMediaType` is true when the
 * encoding is missing, which Connect answers with HTTP 415.
 */
export function parseConnectGetQuery(
  rawQuery: string,
): ConnectGetQuery | { error: ConnectError; unsupportedMediaType?: boolean } {
  let message: Buffer | undefined;
  let messageText: string | undefined;
  let codec: string | undefined;
  let base64 = false;
  let compression: string | undefined;
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? "" : pair.slice(eq + 1);
    switch (name) {
      case "message":
        messageText = rawValue;
        break;
      case "encoding":
        codec = decodeComponent(rawValue).toString("utf8").toLowerCase();
        break;
      case "base64":
        base64 = rawValue === "1";
        break;
      case "compression":
        compression = decodeComponent(rawValue).toString("utf8").toLowerCase();
        break;
      case "connect":
        if (rawValue !== "v1") {
          return {
            error: new ConnectError(`connect query parameter must be "v1": got "${rawValue}"`, Code.InvalidArgument),
          };
        }
        break;
      default:
        // Unknown parameters are allowed: cache busters, tracing, ...
        break;
    }
  }
  if (codec === undefined || codec === "" || !/^[a-z0-9][a-z0-9.+-]*$/.test(codec)) {
    return {
      error: new ConnectError(
        codec === undefined ? "missing encoding query parameter" : `invalid encoding query parameter "${codec}"`,
        Code.Unknown,
      ),
      unsupportedMediaType: true,
    };
  }
  if (messageText === undefined) {
    return { error: new ConnectError("missing message query parameter", Code.InvalidArgument) };
  }
  if (base64) {
    // Base64url has nothing to percent-decode: the text is used as it is.
    const text = isPlain(messageText) ? messageText : decodeComponent(messageText).toString("latin1");
    const decodedMessage = decodeBase64(text);
    if (decodedMessage === undefined) {
      return { error: new ConnectError("message query parameter is not valid base64", Code.InvalidArgument) };
    }
    message = decodedMessage;
  } else {
    message = decodeComponent(messageText);
  }
  if (compression === "identity" || compression === "") compression = undefined;
  return { message, codec, compression };
}

/**
 * Standard or URL-safe base64, padded or not, or undefined. Buffer's decoder
 * skips characters it does not know and stops at a misplaced "=", and a
 * wrong byte in a message must be an error, not silently different data:
 * every character counts towards the length the text must decode to, so
 * any that Buffer skipped shows as bytes missing. No regex over the
 * message: on a 1 KiB GET it cost as much as the decoding. A dangling
 * sixth bit (length 1 mod 4) is no base64 either: Buffer drops it silently.
 */
export function decodeBase64(text: string): Buffer | undefined {
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === 0x3d /* = */) end--;
  if (end > 0 && text.charCodeAt(end - 1) === 0x3d) end--;
  if (end % 4 === 1) return undefined;
  const bytes = Buffer.from(end === text.length ? text : text.slice(0, end), "base64url");
  return bytes.byteLength === Math.floor((end * 3) / 4) ? bytes : undefined;
}

function isPlain(text: string): boolean {
  return text.indexOf("%") < 0 && text.indexOf("+") < 0;
}

/** Decodes `+` and `%XX` (form encoding) into raw bytes. */
function decodeComponent(text: string): Buffer {
  if (isPlain(text)) return Buffer.from(text, "utf8");
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b /* + */) {
      bytes.push(0x20);
    } else if (c === 0x25 /* % */ && i + 2 < text.length && isHex(text, i + 1) && isHex(text, i + 2)) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      for (const b of Buffer.from(char, "utf8")) bytes.push(b);
      i += char.length - 1;
    }
  }
  return Buffer.from(bytes);
}

function isHex(text: string, index: number): boolean {
  const c = text.charCodeAt(index);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}
