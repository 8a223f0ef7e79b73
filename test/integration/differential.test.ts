/**
 * Differential test: the same TestService implementation served over Connect
 * directly by connect-node (the oracle) and over native gRPC behind the
 * bridge must look the same to a Connect client, request for request: HTTP
 * status, content type, code, message, details, headers, trailers and body.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { startConnectGrpcServer, startConnectOracle } from "../support/connect-service.js";
import type { RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { echoRequest, envelope, send, splitFrames, type RawResponse } from "../support/raw-http.js";

const path = "/bridge.test.v1.TestService";

/** Headers that describe one hop, not the call. */
const transportHeaders = new Set(["date", "connection", "keep-alive", "transfer-encoding", "content-length", "vary"]);

/**
 * Error details' optional `debug` form needs the detail's schema, which the
 * bridge only has once descriptors are loaded; without one it is omitted.
 */
function withoutDebug(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDebug);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([k]) => k !== "debug").map(([k, v]) => [k, withoutDebug(v)]),
    );
  }
  return value;
}

function comparable(res: RawResponse) {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (!transportHeaders.has(k)) headers[k] = v;
  const contentType = res.headers["content-type"] ?? "";
  let body: unknown = res.body.toString("base64");
  if (contentType.startsWith("application/json")) body = JSON.parse(res.body.toString("utf8"));
  if (contentType.startsWith("application/connect+")) {
    body = splitFrames(res.body).map((f) =>
      f.flags === 2 ? { end: JSON.parse(f.data.toString("utf8")) } : { flags: f.flags, data: f.data.toString("base64") },
    );
  }
  return { status: res.status, headers, body: withoutDebug(body) };
}

interface Case {
  name: string;
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

const unaryProto = { "content-type": "application/proto", "connect-protocol-version": "1" };
const unaryJson = { "content-type": "application/json", "connect-protocol-version": "1" };
const streamProto = { "content-type": "application/connect+proto", "connect-protocol-version": "1" };
const streamJson = { "content-type": "application/connect+json", "connect-protocol-version": "1" };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

const cases: Case[] = [
  {
    name: "unary proto with metadata",
    url: `${path}/Unary`,
    headers: { ...unaryProto, "x-echo-a": "1", "x-echo-b-bin": "AAEC" },
    body: echoRequest({ text: "hi", payload: new Uint8Array([9, 8]) }),
  },
  { name: "unary JSON", url: `${path}/Unary`, headers: unaryJson, body: json({ text: "hi", payload: "AQI=" }) },
  {
    name: "unary error with details",
    url: `${path}/Unary`,
    headers: { ...unaryJson, "x-echo-a": "1" },
    body: json({ text: "e", fail: { code: Code.PermissionDenied, message: "no entry: ü", withDetails: true } }),
  },
  {
    name: "unary error without details",
    url: `${path}/Unary`,
    headers: unaryProto,
    body: echoRequest({ text: "e", fail: { code: Code.NotFound, message: "gone" } }),
  },
  {
    name: "unary GET, base64 proto",
    url: `${path}/Unary?encoding=proto&base64=1&connect=v1&message=${echoRequest({ text: "g" }).toString("base64url")}`,
    method: "GET",
  },
  {
    name: "unary GET, JSON",
    url: `${path}/Unary?encoding=json&connect=v1&message=${encodeURIComponent(JSON.stringify({ text: "g j" }))}`,
    method: "GET",
  },
  {
    name: "unary invalid Connect-Timeout-Ms",
    url: `${path}/Unary`,
    headers: { ...unaryProto, "connect-timeout-ms": "12x" },
    body: echoRequest({ text: "t" }),
  },
  {
    name: "server stream proto with metadata",
    url: `${path}/ServerStream`,
    headers: { ...streamProto, "x-echo-s": "v" },
    body: envelope(0, echoRequest({ text: "s", responseCount: 3 })),
  },
  {
    name: "server stream JSON ending in an error with details",
    url: `${path}/ServerStream`,
    headers: streamJson,
    body: envelope(0, json({ text: "s", responseCount: 2, fail: { code: Code.Aborted, message: "stop", withDetails: true } })),
  },
  {
    name: "server stream that fails before any message",
    url: `${path}/ServerStream`,
    headers: { ...streamProto, "x-echo-z": "q" },
    body: envelope(0, echoRequest({ text: "s", fail: { code: Code.Unavailable, message: "down" } })),
  },
  {
    name: "client stream proto",
    url: `${path}/ClientStream`,
    headers: streamProto,
    body: Buffer.concat([envelope(0, echoRequest({ text: "a" })), envelope(0, echoRequest({ text: "b" }))]),
  },
  // Not bidi: connect-node refuses it over HTTP/1.1 (505), while the bridge
  // serves it half-duplex; wire-format.test.ts covers it.
];

describe("differential: connect-node over Connect vs bridge in front of connect-node over gRPC", () => {
  let oracle: RunningServer;
  let upstream: RunningServer;
  let bridge: RunningBridge;
  before(async () => {
    oracle = await startConnectOracle();
    upstream = await startConnectGrpcServer();
    bridge = await startBridge(upstream.address);
  });
  after(async () => {
    await bridge.close();
    await upstream.close();
    await oracle.close();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const init = { method: c.method, headers: c.headers, body: c.body };
      const expected = await send(`http://${oracle.address}${c.url}`, init);
      const actual = await send(`${bridge.baseUrl}${c.url}`, init);
      assert.deepEqual(comparable(actual), comparable(expected));
    });
  }
});
