/**
 * Property-based tests (fast-check, fixed seed) for every parser and encoder
 * in src/protocol/: envelopes, streaming base64, timeouts, the gRPC-Web
 * trailer block, the GET query, error JSON and metadata rules.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { IncomingMessage } from "node:http";
import {
  FrameScanner,
  encodeEnvelope,
  envelopeHeader,
  splitEnvelopes,
} from "../../src/protocol/envelope.js";
import { Base64StreamDecoder } from "../../src/protocol/base64-stream.js";
import { grpcTimeoutHeader, parseConnectTimeout, parseGrpcTimeout } from "../../src/protocol/timeout.js";
import { encodeTrailerFrame } from "../../src/protocol/grpc-web-trailers.js";
import { decodeBase64, parseConnectGetQuery } from "../../src/protocol/get-request.js";
import { connectEndStreamJson, connectErrorJson } from "../../src/protocol/error-json.js";
import { copyRequestMetadata, isResponseMetadata, metadataToJsonRecord } from "../../src/protocol/metadata.js";
import { Code, ConnectError, codeToString } from "../../src/protocol/status.js";
import { isProcedurePath } from "../../src/protocol/procedure-path.js";

fc.configureGlobal({ seed: 42, numRuns: 200 });

// ---------------------------------------------------------------- helpers

/** Cuts `bytes` at the given points (taken modulo its length, sorted, deduplicated). */
function cutAt(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.byteLength === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(bytes.subarray(start, point));
    start = point;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

const cuts = fc.array(fc.nat({ max: 1 << 16 }), { maxLength: 12 });
const bytes = (maxLength = 64) => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
const frame = fc.record({ flags: fc.integer({ min: 0, max: 255 }), payload: bytes(80) });

/** What a straightforward reading of the frame format finds in `data`. */
function referenceFrames(data: Buffer): { headers: [number, number][]; atBoundary: boolean } {
  const headers: [number, number][] = [];
  let pos = 0;
  while (pos < data.byteLength) {
    if (data.byteLength - pos < 5) return { headers, atBoundary: false };
    const length = data.readUInt32BE(pos + 1);
    headers.push([data[pos], length]);
    if (data.byteLength - pos - 5 < length) return { headers, atBoundary: false };
    pos += 5 + length;
  }
  return { headers, atBoundary: true };
}

/** String.prototype.toWellFormed (ES2024) for the ES2022 lib. */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const allCodes = Object.values(Code).filter((c): c is Code => typeof c === "number");
const code = fc.constantFrom(...allCodes);
/** Any string, lone surrogates included. */
const anyText = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 20 }));

// ---------------------------------------------------------------- envelopes

describe("envelope properties", () => {
  it("encodeEnvelope writes flags, a big-endian length and the payload; splitEnvelopes reads them back", () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 6 }), (frames) => {
        const encoded = frames.map((f) => encodeEnvelope(f.flags, f.payload));
        for (const [i, e] of encoded.entries()) {
          assert.equal(e.byteLength, 5 + frames[i].payload.byteLength);
          assert.equal(e[0], frames[i].flags);
          assert.equal(e.readUInt32BE(1), frames[i].payload.byteLength);
          assert.deepEqual(e.subarray(0, 5), envelopeHeader(frames[i].flags, frames[i].payload.byteLength));
          assert.deepEqual(e.subarray(5), frames[i].payload);
        }
        const split = splitEnvelopes(Buffer.concat(encoded));
        assert.deepEqual(
          split?.map((f) => [f.flags, Buffer.from(f.data)]),
          frames.map((f) => [f.flags, f.payload]),
        );
      }),
    );
  });

  it("FrameScanner sees every frame header once, in order, however the stream is chunked", () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 6 }), cuts, (frames, cutPoints) => {
        const stream = Buffer.concat(frames.map((f) => encodeEnvelope(f.flags, f.payload)));
        const boundaries = new Set<number>([0]);
        let offset = 0;
        for (const f of frames) boundaries.add((offset += 5 + f.payload.byteLength));
        const seen: [number, number][] = [];
        const scanner = new FrameScanner((flags, length) => void seen.push([flags, length]));
        let consumed = 0;
        for (const piece of cutAt(stream, cutPoints)) {
          assert.equal(scanner.scan(piece), undefined);
          consumed += piece.byteLength;
          assert.equal(scanner.atBoundary, boundaries.has(consumed), `atBoundary after ${consumed} bytes`);
        }
        assert.deepEqual(seen, frames.map((f) => [f.flags, f.payload.byteLength]));
        assert.equal(scanner.frames, frames.length);
      }),
    );
  });

  it("FrameScanner on random bytes in random chunks never throws and agrees with a reference reader and splitEnvelopes", () => {
    fc.assert(
      fc.property(bytes(48), cuts, (data, cutPoints) => {
        const seen: [number, number][] = [];
        const scanner = new FrameScanner((flags, length) => void seen.push([flags, length]));
        for (const piece of cutAt(data, cutPoints)) assert.equal(scanner.scan(piece), undefined);
        const reference = referenceFrames(data);
        assert.deepEqual(seen, reference.headers);
        assert.equal(scanner.atBoundary, reference.atBoundary);
        assert.equal(splitEnvelopes(data) !== undefined, reference.atBoundary);
      }),
    );
  });

  it("FrameScanner stops at the first frame its check rejects", () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), cuts, fc.integer({ min: 0, max: 255 }), (frames, cutPoints, bad) => {
        const stream = Buffer.concat(frames.map((f) => encodeEnvelope(f.flags, f.payload)));
        const checked: number[] = [];
        const scanner = new FrameScanner((flags) => {
          checked.push(flags);
          return flags === bad ? `flags ${flags}` : undefined;
        });
        let problem: string | undefined;
        for (const piece of cutAt(stream, cutPoints)) {
          problem = scanner.scan(piece);
          if (problem !== undefined) break;
        }
        const firstBad = frames.findIndex((f) => f.flags === bad);
        if (firstBad < 0) {
          assert.equal(problem, undefined);
          assert.equal(checked.length, frames.length);
        } else {
          assert.equal(problem, `flags ${bad}`);
          assert.equal(checked.length, firstBad + 1, "nothing is checked after the rejected frame");
        }
      }),
    );
  });

  it("splitEnvelopes on random bytes never throws; what it returns re-encodes to the same bytes", () => {
    fc.assert(
      fc.property(bytes(48), (data) => {
        const frames = splitEnvelopes(data);
        if (frames !== undefined) {
          assert.deepEqual(Buffer.concat(frames.map((f) => encodeEnvelope(f.flags, f.data))), data);
        }
      }),
    );
  });
});

// ---------------------------------------------------------------- base64

describe("Base64StreamDecoder properties", () => {
  /** Bytes split into segments, each encoded with padding (as clients encode each message). */
  const segmentedText = fc
    .tuple(bytes(60), fc.array(fc.nat({ max: 1 << 16 }), { maxLength: 6 }))
    .map(([data, segmentCuts]) => ({
      data,
      text: Buffer.from(cutAt(data, segmentCuts).map((s) => s.toString("base64")).join(""), "latin1"),
    }));

  function decodeAll(pieces: Buffer[]): { out: Buffer | undefined; complete: boolean } {
    const decoder = new Base64StreamDecoder();
    const parts: Buffer[] = [];
    for (const piece of pieces) {
      const decoded = decoder.push(piece);
      if (decoded === undefined) return { out: undefined, complete: false };
      parts.push(decoded);
    }
    return { out: Buffer.concat(parts), complete: decoder.complete };
  }

  it("padded segments back to back, cut anywhere, decode to the original bytes", () => {
    fc.assert(
      fc.property(segmentedText, cuts, ({ data, text }, cutPoints) => {
        const { out, complete } = decodeAll(cutAt(text, cutPoints));
        assert.deepEqual(out, data);
        assert.ok(complete);
      }),
    );
  });

  it("ASCII whitespace anywhere is ignored", () => {
    fc.assert(
      fc.property(segmentedText, fc.array(fc.tuple(fc.nat(), fc.constantFrom(" ", "\r\n", "\t", "\n")), { maxLength: 5 }), cuts, ({ data, text }, spaces, cutPoints) => {
        let spaced = text.toString("latin1");
        for (const [at, space] of spaces) {
          const i = at % (spaced.length + 1);
          spaced = spaced.slice(0, i) + space + spaced.slice(i);
        }
        const { out, complete } = decodeAll(cutAt(Buffer.from(spaced, "latin1"), cutPoints));
        assert.deepEqual(out, data);
        assert.ok(complete);
      }),
    );
  });

  it("a text cut short is never complete", () => {
    fc.assert(
      fc.property(segmentedText, fc.nat(), ({ text }, at) => {
        fc.pre(text.byteLength > 0);
        const prefix = text.subarray(0, at % text.byteLength);
        fc.pre(prefix.byteLength % 4 !== 0);
        const { complete } = decodeAll([prefix]);
        assert.equal(complete, false);
      }),
    );
  });

  it("arbitrary bytes and strings in arbitrary chunks: a Buffer or undefined, never a throw", () => {
    const input = fc.oneof(
      bytes(40),
      fc.string({ unit: fc.constantFrom(..."AQZaz09+/=-_ \r\n*.".split("")), maxLength: 40 }).map((s) => Buffer.from(s, "latin1")),
    );
    fc.assert(
      fc.property(input, cuts, (data, cutPoints) => {
        const decoder = new Base64StreamDecoder();
        for (const piece of cutAt(data, cutPoints)) {
          const out = decoder.push(piece);
          assert.ok(out === undefined || Buffer.isBuffer(out));
          if (out === undefined) break;
        }
      }),
    );
  });

  it("what it accepts decodes like a strict decoder of padded 4-character groups", () => {
    const alphabet = fc.constantFrom(..."AQgw+/=".split(""));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 24 }), (text) => {
        const { out, complete } = decodeAll([Buffer.from(text, "latin1")]);
        if (out === undefined || !complete) return;
        // Every group is 4 characters; '=' only at the end of a group, at most two.
        const groups = text.match(/.{4}/g) ?? [];
        for (const group of groups) assert.match(group, /^[A-Za-z0-9+/]{2}([A-Za-z0-9+/]{2}|[A-Za-z0-9+/]=|==)$/, `accepted "${text}"`);
        assert.deepEqual(out, Buffer.concat(groups.map((g) => Buffer.from(g, "base64"))));
      }),
    );
  });

  it(
    "rejects bytes outside the base64 alphabet and ASCII whitespace",
    () => {
      fc.assert(
        fc.property(bytes(8), fc.integer({ min: 0x80, max: 0xff }), fc.nat(), (data, foreign, at) => {
          const text = Buffer.from(data.toString("base64"), "latin1");
          const i = at % (text.byteLength + 1);
          const dirty = Buffer.concat([text.subarray(0, i), Buffer.from([foreign]), text.subarray(i)]);
          assert.equal(new Base64StreamDecoder().push(dirty), undefined, `byte 0x${foreign.toString(16)} accepted`);
        }),
      );
    },
  );
});

// ---------------------------------------------------------------- timeouts

describe("timeout properties", () => {
  const maxConnectMs = 9_999_999_999;

  it("parseConnectTimeout reads every 1-10 digit value, leading zeros included", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: maxConnectMs }), fc.nat({ max: 9 }), (ms, zeros) => {
        assert.equal(parseConnectTimeout(String(ms)), ms);
        const padded = "0".repeat(zeros) + String(ms);
        if (padded.length <= 10) assert.equal(parseConnectTimeout(padded), ms);
      }),
    );
  });

  it("parseConnectTimeout rejects more than 10 digits, signs, and anything not a digit", () => {
    const notTimeout = fc.oneof(
      fc.stringMatching(/^\d{11,20}$/),
      fc.stringMatching(/^[-+]\d{1,5}$/),
      fc.string({ maxLength: 12 }).filter((s) => !/^\d{1,10}$/.test(s)),
    );
    fc.assert(fc.property(notTimeout, (value) => assert.ok(parseConnectTimeout(value) instanceof ConnectError, JSON.stringify(value))));
    assert.equal(parseConnectTimeout(undefined), undefined);
  });

  it("grpcTimeoutHeader writes at most 8 digits and never shortens the deadline by more than nothing", () => {
    const unitMs: Record<string, number> = { m: 1, S: 1000, M: 60_000, H: 3_600_000 };
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: maxConnectMs }), fc.integer({ min: 0, max: 99_999_999 * 3_600_000 })), (ms) => {
        const header = grpcTimeoutHeader(ms);
        const match = /^(\d{1,8})([HMSm])$/.exec(header);
        assert.ok(match, header);
        const back = parseGrpcTimeout(header);
        assert.equal(typeof back, "number");
        assert.ok((back as number) >= ms, `${ms} -> ${header} -> ${back}`);
        assert.ok((back as number) - ms < unitMs[match[2]], `${ms} -> ${header} rounds up by less than one unit`);
        if (ms < 100_000_000) assert.equal(back, ms);
      }),
    );
  });

  it("parseGrpcTimeout reads every 1-8 digit value in every unit, rounding sub-millisecond values up", () => {
    const exact: Record<string, (n: number) => number> = {
      H: (n) => n * 3_600_000,
      M: (n) => n * 60_000,
      S: (n) => n * 1000,
      m: (n) => n,
      u: (n) => Math.ceil(n / 1000),
      n: (n) => Math.ceil(n / 1_000_000),
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999_999 }), fc.constantFrom("H", "M", "S", "m", "u", "n"), (n, unit) => {
        assert.equal(parseGrpcTimeout(`${n}${unit}`), exact[unit](n), `${n}${unit}`);
      }),
    );
  });

  it("parseGrpcTimeout rejects 9+ digits, missing or unknown units, signs, spaces and fractions", () => {
    const bad = fc.oneof(
      fc.stringMatching(/^\d{9,12}[HMSmun]$/),
      fc.stringMatching(/^\d{1,8}$/),
      fc.stringMatching(/^\d{1,8}[^HMSmun0-9]$/),
      fc.stringMatching(/^[-+ ]\d{1,7}[HMSmun]$/),
      fc.stringMatching(/^\d{1,3}\.\d{1,3}[HMSmun]$/),
      fc.string({ maxLength: 10 }).filter((s) => !/^\d{1,8}[HMSmun]$/.test(s)),
    );
    fc.assert(fc.property(bad, (value) => assert.ok(parseGrpcTimeout(value) instanceof ConnectError, JSON.stringify(value))));
  });
});

// ---------------------------------------------------------------- gRPC-Web trailers

describe("encodeTrailerFrame properties", () => {
  const name = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,15}$/);
  // Latin-1 header values as Node hands them over: no CR, LF or NUL.
  const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 20 });
  const block = fc.dictionary(name, fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 3 }), fc.constant(undefined)), { maxKeys: 8 });

  it("is a 0x80 frame whose payload lists every entry as `name: value\\r\\n`, repeats in order, undefined skipped", () => {
    fc.assert(
      fc.property(block, (entries) => {
        const encoded = encodeTrailerFrame(entries);
        assert.equal(encoded[0], 0x80);
        assert.equal(encoded.readUInt32BE(1), encoded.byteLength - 5);
        const lines = encoded.subarray(5).toString("latin1").split("\r\n");
        assert.equal(lines.pop(), "", "every line ends with CRLF");
        const expected: [string, string][] = [];
        for (const [n, v] of Object.entries(entries)) {
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) expected.push([n, one]);
        }
        assert.deepEqual(
          lines.map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
          expected,
        );
        // Byte-exact: Latin-1 values survive as their own bytes.
        assert.equal(encoded.byteLength - 5, expected.reduce((sum, [n, v]) => sum + n.length + 2 + v.length + 2, 0));
      }),
    );
  });
});

// ---------------------------------------------------------------- GET query

describe("parseConnectGetQuery properties", () => {
  const percentAll = (data: Uint8Array) => [...data].map((b) => "%" + b.toString(16).padStart(2, "0")).join("");

  it("never throws on arbitrary query strings; answers a message or a ConnectError", () => {
    const queryish = fc.string({ unit: fc.constantFrom(..."&=%+message=encoding=proto&base64=1&compression=gzip&connect=v1aZ09%2Bé\u0000\uD800".split("")), maxLength: 60 });
    fc.assert(
      fc.property(fc.oneof(anyText, queryish), (query) => {
        const result = parseConnectGetQuery(query);
        if ("error" in result) assert.ok(result.error instanceof ConnectError);
        else {
          assert.ok(Buffer.isBuffer(result.message));
          assert.match(result.codec, /^[a-z0-9][a-z0-9.+-]*$/);
        }
      }),
    );
  });

  it("decodeBase64 accepts exactly what the pattern of standard or URL-safe base64 accepts, and decodes it as Buffer does", () => {
    const reference = (text: string) =>
      /^[A-Za-z0-9_\-+/]*={0,2}$/.test(text) && text.replace(/=+$/, "").length % 4 !== 1 ? Buffer.from(text, "base64url") : undefined;
    const base64ish = fc.string({ unit: fc.constantFrom(..."AZaz09-_+/=  *.é\u0000".split("")), maxLength: 24 });
    fc.assert(
      fc.property(fc.oneof(base64ish, bytes(40).map((b) => Buffer.from(b).toString("base64")), bytes(40).map((b) => Buffer.from(b).toString("base64url"))), (text) => {
        assert.deepEqual(decodeBase64(text), reference(text), JSON.stringify(text));
      }),
      { numRuns: 2000 },
    );
  });

  it("a percent-encoded message (every byte %XX, upper or lower case) is read back byte for byte", () => {
    fc.assert(
      fc.property(bytes(64), fc.boolean(), (data, upper) => {
        const encoded = upper ? percentAll(data).toUpperCase() : percentAll(data);
        const result = parseConnectGetQuery(`encoding=proto&message=${encoded}`);
        assert.ok(!("error" in result), JSON.stringify(result));
        assert.deepEqual(result.message, data);
      }),
    );
  });

  it("encodeURIComponent of any well-formed string is read back as its UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 30 }), (text) => {
        const result = parseConnectGetQuery(`message=${encodeURIComponent(text)}&encoding=json`);
        assert.ok(!("error" in result));
        assert.deepEqual(result.message, Buffer.from(text, "utf8"));
        assert.equal(result.codec, "json");
      }),
    );
  });

  it("base64url (unpadded), and standard base64 with padding percent-encoded, round-trip random bytes", () => {
    fc.assert(
      fc.property(bytes(64), fc.constantFrom("url", "std", "url-padded"), (data, flavour) => {
        const text =
          flavour === "url"
            ? data.toString("base64url")
            : flavour === "std"
              ? encodeURIComponent(data.toString("base64"))
              : data.toString("base64url") + "=".repeat((4 - (data.toString("base64url").length % 4)) % 4);
        const result = parseConnectGetQuery(`base64=1&encoding=proto&message=${text}`);
        assert.ok(!("error" in result), `${flavour}: ${text}`);
        assert.deepEqual(result.message, data);
      }),
    );
  });

  it("parameter order, unknown parameters and the encoding's case do not matter", () => {
    fc.assert(
      fc.property(bytes(16), fc.mixedCase(fc.constantFrom("proto", "json")), fc.array(fc.stringMatching(/^[a-z]{1,5}=[a-z0-9]{0,5}$/), { maxLength: 3 }), fc.nat(), (data, encoding, extras, seed) => {
        fc.pre(extras.every((e) => !/^(message|encoding|base64|compression|connect)=/.test(e)));
        const params = [`message=${data.toString("base64url")}`, "base64=1", `encoding=${encoding}`, "connect=v1", ...extras];
        const shuffled = params.map((p, i) => [(i * 7919 + seed) % 101, p] as const).sort((a, b) => a[0] - b[0]).map(([, p]) => p);
        const result = parseConnectGetQuery(shuffled.join("&"));
        assert.ok(!("error" in result));
        assert.deepEqual(result.message, data);
        assert.equal(result.codec, encoding.toLowerCase());
        assert.equal(result.compression, undefined);
      }),
    );
  });

  it(
    "rejects base64 whose unpadded length is 1 mod 4 (no encoding produces it)",
    () => {
      fc.assert(
        fc.property(bytes(30), fc.constantFrom(..."AQgw-_".split("")), (data, extra) => {
          const text = data.toString("base64url");
          fc.pre(text.length % 4 === 0);
          const result = parseConnectGetQuery(`base64=1&encoding=proto&message=${text}${extra}`);
          assert.ok("error" in result, `message=${text}${extra} accepted`);
        }),
      );
    },
  );
});

// ---------------------------------------------------------------- error JSON

describe("error JSON properties", () => {
  it("connectErrorJson is valid UTF-8 JSON: {code} with the code's name and the message (well-formed), any message", () => {
    fc.assert(
      fc.property(anyText, code, (message, c) => {
        const json = JSON.parse(utf8.decode(connectErrorJson(new ConnectError(message, c))));
        assert.equal(json.code, codeToString(c));
        if (message === "") assert.equal(json.message, undefined);
        else assert.equal(json.message, wellFormed(message));
        assert.deepEqual(Object.keys(json).filter((k) => k !== "message" && k !== "details"), ["code"]);
      }),
    );
  });

  it("connectEndStreamJson is valid UTF-8 JSON carrying the error and every metadata value, repeats and odd names included", () => {
    const metadataName = fc.oneof(fc.stringMatching(/^[a-z0-9_.-]{1,12}$/), fc.constantFrom("__proto__", "constructor", "toString", "x-bin"));
    const metadata = fc.option(
      fc.array(fc.tuple(metadataName, fc.array(anyText, { minLength: 1, maxLength: 3 })), { maxLength: 5 }).map((entries) => Object.fromEntries(entries) as Record<string, string[]>),
      { nil: undefined },
    );
    fc.assert(
      fc.property(metadata, fc.option(fc.tuple(anyText, code), { nil: undefined }), (md, err) => {
        const error = err === undefined ? undefined : new ConnectError(err[0], err[1]);
        const parsed = JSON.parse(utf8.decode(connectEndStreamJson(md, error)));
        if (md === undefined) assert.equal(Object.hasOwn(parsed, "metadata"), false);
        else {
          assert.deepEqual(Object.keys(parsed.metadata), Object.keys(md));
          for (const key of Object.keys(md)) assert.deepEqual(parsed.metadata[key], md[key]);
        }
        if (error === undefined) assert.equal(parsed.error, undefined);
        else {
          assert.equal(parsed.error.code, codeToString(error.code));
          // JSON.stringify escapes lone surrogates, so the message survives exactly.
          assert.equal(parsed.error.message ?? "", err![0]);
        }
      }),
    );
  });
});

// ---------------------------------------------------------------- metadata

describe("metadata properties", () => {
  const hopByHop = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "transfer-encoding", "upgrade", "te", "trailer", "host", "content-length", "http2-settings", "expect"];
  const protocol = ["content-type", "content-encoding", "accept-encoding", "connect-protocol-version", "connect-timeout-ms", "connect-content-encoding", "connect-accept-encoding", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message", "grpc-status-details-bin", "x-grpc-web"];
  const dropped = new Set([...hopByHop, ...protocol]);
  const prototypeNames = new Set(Object.getOwnPropertyNames(Object.prototype).map((n) => n.toLowerCase()));
  const token = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,10}$/).filter((n) => !prototypeNames.has(n));
  const plainName = fc.mixedCase(fc.oneof(token, fc.constantFrom("x-a", "x-a-bin", "authorization", "user-agent")));
  const anyName = fc.mixedCase(fc.oneof({ weight: 3, arbitrary: token }, fc.constantFrom(...hopByHop, ...protocol, "trailer-x", "Trailer-Grpc-Status", "x-listed", "x-a-bin")));
  const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 });
  const rawHeaderList = (names: fc.Arbitrary<string>) =>
    fc.array(fc.tuple(names, headerValue), { maxLength: 12 }).chain((pairs) =>
      // Sometimes a Connection header naming some of the others.
      fc.option(fc.subarray(pairs.map(([n]) => n.toLowerCase())), { nil: undefined }).map((listed) =>
        listed === undefined ? pairs : [...pairs, ["Connection", [...listed, "x-listed"].join(", ")] as [string, string]],
      ),
    );

  /** What copyRequestMetadata should produce: allowed names, lower case, values in order. */
  function expectedMetadata(pairs: [string, string][]): Map<string, string[]> {
    const listed = new Set<string>();
    for (const [n, v] of pairs) if (n.toLowerCase() === "connection") for (const t of v.split(",")) listed.add(t.trim().toLowerCase());
    const out = new Map<string, string[]>();
    for (const [n, v] of pairs) {
      const name = n.toLowerCase();
      if (dropped.has(name) || listed.has(name) || name.startsWith("trailer-")) continue;
      out.set(name, [...(out.get(name) ?? []), v]);
    }
    return out;
  }

  const copy = (pairs: [string, string][]) => {
    const target = {};
    copyRequestMetadata(pairs.flat(), target);
    return target as Record<string, string | string[]>;
  };

  it("copyRequestMetadata never lets through hop-by-hop, protocol, Connection-listed or trailer- headers", () => {
    fc.assert(
      fc.property(rawHeaderList(anyName), (pairs) => {
        const target = copy(pairs);
        const listed = new Set(pairs.filter(([n]) => n.toLowerCase() === "connection").flatMap(([, v]) => v.split(",").map((t) => t.trim().toLowerCase())));
        for (const name of Object.keys(target)) {
          assert.ok(!dropped.has(name), `${name} let through`);
          assert.ok(!listed.has(name), `${name} is listed in Connection`);
          assert.ok(!name.startsWith("trailer-"), name);
        }
      }),
    );
  });

  it("copyRequestMetadata keeps every other header, lower-cased, in order and multiplicity (one value: a string)", () => {
    fc.assert(
      fc.property(rawHeaderList(fc.oneof(plainName, anyName)), (pairs) => {
        const target = copy(pairs);
        const expected = expectedMetadata(pairs);
        assert.deepEqual(Object.keys(target).sort(), [...expected.keys()].sort());
        for (const [name, values] of expected) assert.deepEqual(target[name], values.length === 1 ? values[0] : values, name);
      }),
    );
  });

  it("copyRequestMetadata with a parsed Connection value (cached by value): each call drops what its own Connection lists, whatever came before", () => {
    // Few values, so that most runs meet a value an earlier run cached.
    const connectionValue = fc.constantFrom("keep-alive", "close", "Keep-Alive, x-a", "x-listed", "keep-alive, X-Listed, user-agent", "upgrade");
    fc.assert(
      fc.property(rawHeaderList(fc.oneof(plainName, anyName)), connectionValue, (pairs, connection) => {
        const withConnection = [...pairs.filter(([n]) => n.toLowerCase() !== "connection"), ["Connection", connection] as [string, string]];
        const target = {} as Record<string, string | string[]>;
        copyRequestMetadata(withConnection.flat(), target, connection);
        const expected = expectedMetadata(withConnection);
        assert.deepEqual(Object.keys(target).sort(), [...expected.keys()].sort());
      }),
    );
  });

  it(
    "copyRequestMetadata treats names that are Object.prototype members (constructor, __proto__) like any other",
    () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.constantFrom("constructor", "__proto__", "toString", "x-a"), headerValue), { minLength: 1, maxLength: 4 }), (pairs) => {
          const target = copy(pairs);
          const expected = expectedMetadata(pairs);
          assert.deepEqual(Object.keys(target).sort(), [...expected.keys()].sort());
          for (const [name, values] of expected) assert.deepEqual(target[name], values.length === 1 ? values[0] : values, name);
          assert.equal(Object.getPrototypeOf(target), Object.prototype);
        }),
      );
    },
  );

  /** The request's headers as Node's HTTP parser builds `req.headers` from them. */
  const parsedByNode = (pairs: [string, string][]) => {
    const message = new IncomingMessage(null as never) as IncomingMessage & { _addHeaderLines(raw: string[], n: number): void };
    message._addHeaderLines(pairs.flat(), pairs.length * 2);
    return message.headers;
  };

  it("copyRequestMetadata given Node's parsed headers (the fast path when no name repeats) copies exactly what the raw path copies", () => {
    fc.assert(
      fc.property(rawHeaderList(fc.oneof(plainName, anyName, fc.constantFrom("constructor", "__proto__", "set-cookie", "cookie"))), (pairs) => {
        const raw = pairs.flat();
        const parsed = parsedByNode(pairs);
        const fast: Record<string, string | string[]> = {};
        const problemFast = copyRequestMetadata(raw, fast, parsed.connection ?? null, parsed);
        const slow: Record<string, string | string[]> = {};
        const problemSlow = copyRequestMetadata(raw, slow, parsed.connection ?? null);
        assert.deepEqual(fast, slow);
        assert.equal(problemFast, problemSlow);
      }),
    );
  });

  const responseName = fc.oneof(token, fc.constantFrom(":status", "content-type", "date", "grpc-status", "grpc-message", "grpc-encoding", "content-length", "x-a-bin", "trailer-x"));
  const responseBlock = (names: fc.Arbitrary<string>) =>
    fc.array(fc.tuple(names, fc.oneof(headerValue, fc.array(headerValue, { minLength: 1, maxLength: 3 }))), { maxLength: 8 }).map((entries) => Object.fromEntries(entries) as Record<string, string | string[]>);

  it("metadataToJsonRecord keeps exactly the metadata entries, every value as a list", () => {
    fc.assert(
      fc.property(responseBlock(responseName), (block) => {
        const record = metadataToJsonRecord(block);
        const names = Object.keys(block).filter(isResponseMetadata);
        if (names.length === 0) return assert.equal(record, undefined);
        assert.deepEqual(Object.keys(record!).sort(), names.sort());
        for (const name of names) assert.deepEqual(record![name], Array.isArray(block[name]) ? block[name] : [block[name]]);
      }),
    );
    assert.equal(metadataToJsonRecord(undefined), undefined);
  });

  it(
    "metadataToJsonRecord keeps a trailer named __proto__",
    () => {
      fc.assert(
        fc.property(responseBlock(fc.constantFrom("__proto__", "constructor", "x-a")), (block) => {
          const record = metadataToJsonRecord(block);
          const names = Object.keys(block).filter(isResponseMetadata);
          assert.deepEqual(Object.keys(record ?? {}).sort(), names.sort());
        }),
      );
    },
  );
});

describe("procedure paths", () => {
  // The language the bridge accepted before the hand-written scanner, as a RegExp.
  const procedurePath = /^[A-Za-z_][A-Za-z0-9_.]*\/[A-Za-z_][A-Za-z0-9_]*$/;
  const nearPath = fc.string({ unit: fc.constantFrom("a", "Z", "_", "0", "9", ".", "/", "-", " ", "é", "\n"), maxLength: 12 });

  it("isProcedurePath accepts exactly what /^[A-Za-z_][A-Za-z0-9_.]*\\/[A-Za-z_][A-Za-z0-9_]*$/ does", () => {
    fc.assert(
      fc.property(fc.oneof(nearPath, fc.string(), fc.constantFrom("pkg.Service/Method", "S/M", "a.b.C/d_1", "/S/M", "S/M/", "S//M", "S/", "/M", "", "1S/M", "S/1M", "S.x/M.y")), (path) => {
        assert.equal(isProcedurePath(path), procedurePath.test(path), JSON.stringify(path));
      }),
      { numRuns: 2000 },
    );
  });
});
