/**
 * The pure wire pieces in src/protocol/, in isolation.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FrameScanner, encodeEnvelope, splitEnvelopes } from "../../src/protocol/envelope.js";
import { grpcTimeoutHeader, parseConnectTimeout, parseGrpcTimeout } from "../../src/protocol/timeout.js";
import {
  checkGrpcResponseContentType,
  parseConnectContentType,
  parseGrpcWebContentType,
} from "../../src/protocol/content-type.js";
import { Base64StreamDecoder } from "../../src/protocol/base64-stream.js";
import { encodeTrailerFrame } from "../../src/protocol/grpc-web-trailers.js";
import { parseConnectGetQuery } from "../../src/protocol/get-request.js";
import { copyRequestMetadata, metadataToJsonRecord } from "../../src/protocol/metadata.js";
import { acceptableEncodings, compress, decompress, parseEncodingList } from "../../src/protocol/compression.js";
import { Code } from "../../src/protocol/status.js";
import { ConnectError } from "../../src/protocol/status.js";

describe("FrameScanner", () => {
  const frames = Buffer.concat([encodeEnvelope(0, Buffer.from("hello")), encodeEnvelope(1, Buffer.alloc(300, 1))]);

  it("finds every frame header however the bytes are cut", () => {
    for (let cut = 1; cut < frames.byteLength; cut++) {
      const seen: [number, number][] = [];
      const scanner = new FrameScanner((flags, length) => void seen.push([flags, length]));
      assert.equal(scanner.scan(frames.subarray(0, cut)), undefined);
      assert.equal(scanner.scan(frames.subarray(cut)), undefined);
      assert.deepEqual(seen, [[0, 5], [1, 300]], `cut at ${cut}`);
      assert.ok(scanner.atBoundary);
    }
  });

  it("byte by byte, too", () => {
    const scanner = new FrameScanner(() => undefined);
    for (const byte of frames) scanner.scan(Buffer.from([byte]));
    assert.equal(scanner.frames, 2);
    assert.ok(scanner.atBoundary);
  });

  it("knows when the bytes stop inside a frame", () => {
    const scanner = new FrameScanner(() => undefined);
    scanner.scan(frames.subarray(0, 7));
    assert.equal(scanner.atBoundary, false);
  });

  it("reports what the check rejects", () => {
    const scanner = new FrameScanner((flags) => (flags === 1 ? "no compression here" : undefined));
    assert.equal(scanner.scan(frames), "no compression here");
  });

  it("splitEnvelopes rejects a partial frame", () => {
    assert.equal(splitEnvelopes(frames.subarray(0, frames.byteLength - 1)), undefined);
    assert.equal(splitEnvelopes(frames)?.length, 2);
  });
});

describe("timeouts", () => {
  it("parses Connect-Timeout-Ms and rejects what Connect forbids", () => {
    assert.equal(parseConnectTimeout(undefined), undefined);
    assert.equal(parseConnectTimeout("1500"), 1500);
    assert.equal(parseConnectTimeout("9999999999"), 9_999_999_999);
    for (const bad of ["", "-1", "1.5", "12345678901", " 1", "1e3"]) {
      assert.ok(parseConnectTimeout(bad) instanceof ConnectError, bad);
    }
  });

  it("writes grpc-timeout with at most 8 digits", () => {
    assert.equal(grpcTimeoutHeader(0), "0m");
    assert.equal(grpcTimeoutHeader(99_999_999), "99999999m");
    assert.equal(grpcTimeoutHeader(100_000_000), "100000S");
    assert.equal(grpcTimeoutHeader(9_999_999_999), "10000000S");
    for (const ms of [1, 12345, 1e8, 5e9, 9_999_999_999]) {
      assert.match(grpcTimeoutHeader(ms), /^\d{1,8}[HMSmun]$/);
    }
  });
});

describe("content types", () => {
  it("parses Connect unary and streaming types with any codec", () => {
    assert.deepEqual(parseConnectContentType("application/proto"), { stream: false, codec: "proto" });
    assert.deepEqual(parseConnectContentType("application/json; charset=utf-8"), { stream: false, codec: "json" });
    assert.deepEqual(parseConnectContentType("Application/Connect+JSON"), { stream: true, codec: "json" });
    assert.deepEqual(parseConnectContentType("application/connect+cbor"), { stream: true, codec: "cbor" });
    for (const other of [undefined, "text/plain", "application/grpc", "application/grpc-web+proto", "application/json; charset=latin1"]) {
      assert.equal(parseConnectContentType(other), undefined, String(other));
    }
  });

  it("checks the upstream's content type against the request codec", () => {
    assert.equal(checkGrpcResponseContentType("application/grpc", "proto"), undefined);
    assert.equal(checkGrpcResponseContentType("application/grpc+proto", "proto"), undefined);
    assert.equal(checkGrpcResponseContentType("application/grpc+json", "json"), undefined);
    assert.match(checkGrpcResponseContentType("application/grpc+proto", "json")!, /json request with codec proto/);
    assert.match(checkGrpcResponseContentType("text/html", "proto")!, /not application\/grpc/);
    assert.match(checkGrpcResponseContentType(undefined, "proto")!, /no content-type/);
  });
});

describe("GET query", () => {
  it("decodes base64url messages, padded or not", () => {
    for (const message of ["AQID", "AQID", "_-8", "_-8="]) {
      const q = parseConnectGetQuery(`encoding=proto&base64=1&message=${message}`);
      assert.ok(!("error" in q));
    }
    const q = parseConnectGetQuery("encoding=proto&base64=1&message=_-8");
    assert.ok(!("error" in q) && q.message.equals(Buffer.from([0xff, 0xef])));
  });

  it("decodes percent-encoded bytes and + as space", () => {
    const q = parseConnectGetQuery("encoding=json&message=%7B%22a%22%3A%22x+y%22%7D&compression=identity");
    assert.ok(!("error" in q));
    assert.equal(q.message.toString(), '{"a":"x y"}');
    assert.equal(q.compression, undefined);
  });

  it("rejects what Connect does not allow", () => {
    assert.ok("error" in parseConnectGetQuery("message=x"));
    assert.ok("error" in parseConnectGetQuery("encoding=proto"));
    assert.ok("error" in parseConnectGetQuery("encoding=proto&message=x&connect=v2"));
    assert.ok("error" in parseConnectGetQuery("encoding=proto&base64=1&message=%00%01"));
  });
});

describe("metadata", () => {
  it("drops hop-by-hop and protocol headers, keeps repeated ones apart", () => {
    const target = {};
    copyRequestMetadata(
      [
        "Host", "a", "Connection", "keep-alive, X-Hop", "X-Hop", "1", "Content-Type", "application/proto",
        "Connect-Timeout-Ms", "5", "Authorization", "Bearer t", "X-Id-Bin", "AAE=", "x-id-bin", "AgM=",
        "Trailer-X", "1", "TE", "trailers", "Content-Length", "3", "Grpc-Timeout", "1S", "Accept-Encoding", "gzip",
      ],
      target,
    );
    assert.deepEqual(target, { authorization: "Bearer t", "x-id-bin": ["AAE=", "AgM="] });
  });

  it("turns trailers into end-stream metadata lists", () => {
    assert.deepEqual({ ...metadataToJsonRecord({ "grpc-status": "0", "x-a": "1", "set-cookie": ["a", "b"] }) }, {
      "x-a": ["1"],
      "set-cookie": ["a", "b"],
    });
    assert.equal(metadataToJsonRecord({ "grpc-status": "0" }), undefined);
  });

  it("offers the upstream only codings both sides accept", () => {
    assert.equal(acceptableEncodings(parseEncodingList("gzip, br;q=1, deflate;q=0"), ["gzip", "br"]), "gzip,br");
    assert.equal(acceptableEncodings(parseEncodingList("identity"), ["gzip"]), undefined);
    assert.equal(acceptableEncodings(parseEncodingList(undefined), ["gzip"]), undefined);
  });
});

describe("gRPC-Web pieces", () => {
  it("parses gRPC-Web content types, text and binary", () => {
    assert.deepEqual(parseGrpcWebContentType("application/grpc-web"), { text: false, codec: "proto" });
    assert.deepEqual(parseGrpcWebContentType("application/grpc-web+json"), { text: false, codec: "json" });
    assert.deepEqual(parseGrpcWebContentType("application/grpc-web-text"), { text: true, codec: "proto" });
    assert.deepEqual(parseGrpcWebContentType("application/grpc-web-text+proto; charset=utf-8"), { text: true, codec: "proto" });
    assert.equal(parseGrpcWebContentType("application/grpc"), undefined);
    assert.equal(parseGrpcWebContentType("application/connect+proto"), undefined);
  });

  it("decodes base64 cut anywhere, with padded segments back to back", () => {
    const bytes = Buffer.from([0, 1, 2, 3, 4, 250, 251, 252, 253, 254, 255]);
    const segments = [bytes.subarray(0, 4), bytes.subarray(4, 5), bytes.subarray(5)];
    const text = Buffer.from(segments.map((s) => s.toString("base64")).join(""));
    for (let cut = 0; cut <= text.length; cut++) {
      const decoder = new Base64StreamDecoder();
      const a = decoder.push(text.subarray(0, cut));
      const b = decoder.push(text.subarray(cut));
      assert.ok(a && b, `cut at ${cut}`);
      assert.deepEqual([...Buffer.concat([a, b])], [...bytes], `cut at ${cut}`);
      assert.ok(decoder.complete);
    }
  });

  it("rejects what is not base64, and notices a partial group", () => {
    assert.equal(new Base64StreamDecoder().push(Buffer.from("AB*D")), undefined);
    assert.equal(new Base64StreamDecoder().push(Buffer.from("A===")), undefined);
    const decoder = new Base64StreamDecoder();
    decoder.push(Buffer.from("QUJD" + "QQ"));
    assert.equal(decoder.complete, false);
  });

  it("writes the trailer frame as an HTTP/1 header block", () => {
    const frame = encodeTrailerFrame({ "grpc-status": "0", "x-a": ["1", "2"] });
    assert.equal(frame[0], 0x80);
    assert.equal(frame.subarray(5).toString(), "grpc-status: 0\r\nx-a: 1\r\nx-a: 2\r\n");
    assert.equal(frame.readUInt32BE(1), frame.byteLength - 5);
  });

  it("reads grpc-timeout in every unit, rounding up to whole milliseconds", () => {
    assert.equal(parseGrpcTimeout("2S"), 2000);
    assert.equal(parseGrpcTimeout("1500u"), 2);
    assert.equal(parseGrpcTimeout("1H"), 3_600_000);
    assert.ok(parseGrpcTimeout("123456789m") instanceof ConnectError);
    assert.ok(parseGrpcTimeout("5s") instanceof ConnectError);
  });
});

describe("compression", () => {
  it("compress: messages below 16 KiB (compressed in place) and above (through zlib's pool) decompress to themselves, in every coding", async () => {
    for (const coding of ["gzip", "deflate", "br"]) {
      for (const size of [0, 1, 1024, 16 * 1024 - 1, 16 * 1024, 100_000]) {
        const message = Buffer.alloc(size, "hello bridge ");
        const packed = await compress(coding, message);
        if (size >= 1024) assert.ok(packed.byteLength < size, `${coding} ${size}: ${packed.byteLength} bytes`);
        assert.deepEqual(await decompress(coding, packed, 1 << 20, "message", Code.Internal), message, `${coding} ${size}`);
      }
    }
  });

  it("compress: an unknown coding is refused (no silent fallback on either path)", () => {
    assert.throws(() => compress("zstd", Buffer.alloc(10)), /cannot compress with coding "zstd"/);
  });
});
