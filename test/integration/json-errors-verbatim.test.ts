/**
 * Regression test for the bridge rewriting upstream errors (issue 12, cause
 * 1): a JSON call without a schema is forwarded as application/grpc+json, and
 * an upstream answer of internal, unknown or unimplemented got
 * " [the bridge has no schema for this method ...]" appended to its message.
 * A proxy never alters an upstream's status, message, details or metadata.
 *
 * The upstream really speaks grpc+json (connect-node's gRPC server, JSON
 * codec). What the bridge delivers is compared with real peers: for Connect,
 * with connect-node serving Connect itself (the oracle); for gRPC-Web and
 * native gRPC, with the upstream's own status headers, byte for byte.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { startConnectGrpcServer, startConnectOracle } from "../support/connect-service.js";
import type { RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { envelope, h2Exchange, send, splitFrames } from "../support/raw-http.js";

const unaryPath = "/bridge.test.v1.TestService/Unary";
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
/** Characters grpc-message must percent-encode, so the exact bytes matter. */
const message = "boom: 100% ünïcode, \"quoted\" [brackets]";
const codes = [Code.Internal, Code.Unknown, Code.Unimplemented];
const failing = (code: Code) => json({ text: "e", fail: { code, message, withDetails: true } });

/** A native gRPC exchange over h2c: the response headers and trailers as sent. */
async function grpcExchange(
  address: string,
  contentType: string,
  body: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }> {
  const headers = { ":method": "POST", ":path": unaryPath, "content-type": contentType, te: "trailers", "x-echo-k": "v1" };
  const answer = await h2Exchange(address, headers, body);
  return { headers: answer.headers, trailers: answer.trailers, data: answer.body };
}

/** The status fields of a gRPC answer, wherever they came (trailers, or headers when trailers-only). */
function statusFields(block: Record<string, unknown>): Record<string, unknown> {
  return {
    "grpc-status": block["grpc-status"],
    "grpc-message": block["grpc-message"],
    "grpc-status-details-bin": block["grpc-status-details-bin"],
    "x-trailer-k": block["x-trailer-k"],
  };
}

function withoutDebug(details: { type: string; value: string }[] | undefined) {
  return details?.map(({ type, value }) => ({ type, value }));
}

describe("bridge without a schema: upstream errors of JSON calls arrive unaltered (regression: withTranscodingHint rewrote them)", () => {
  let upstream: RunningServer;
  let oracle: RunningServer;
  let bridge: RunningBridge;
  before(async () => {
    upstream = await startConnectGrpcServer();
    oracle = await startConnectOracle();
    bridge = await startBridge(upstream.address);
  });
  after(async () => {
    await bridge.close();
    await oracle.close();
    await upstream.close();
  });

  it("Connect unary JSON: HTTP status, code, message, details and metadata are the oracle's", async () => {
    for (const code of codes) {
      const headers = { "content-type": "application/json", "connect-protocol-version": "1", "x-echo-k": "v1" };
      const direct = await send(`http://${oracle.address}${unaryPath}`, { headers, body: failing(code) });
      const bridged = await send(`${bridge.baseUrl}${unaryPath}`, { headers, body: failing(code) });
      assert.equal(bridged.status, direct.status, `code ${code}: HTTP status`);
      const want = JSON.parse(direct.body.toString("utf8"));
      const got = JSON.parse(bridged.body.toString("utf8"));
      assert.equal(got.code, want.code, `code ${code}`);
      assert.equal(got.message, message, `code ${code}: message`);
      assert.equal(got.message, want.message, `code ${code}: message`);
      assert.equal(got.details?.length, 1, `code ${code}: one detail`);
      assert.deepEqual(withoutDebug(got.details), withoutDebug(want.details), `code ${code}: details`);
      assert.equal(bridged.headers["x-echo-k"], "v1", `code ${code}: header metadata`);
      assert.equal(bridged.headers["trailer-x-trailer-k"] ?? bridged.headers["x-trailer-k"], "v1", `code ${code}: trailer metadata`);
    }
  });

  it("Connect streaming JSON: the end-stream error is the oracle's", async () => {
    for (const code of codes) {
      const headers = { "content-type": "application/connect+json", "connect-protocol-version": "1", "x-echo-k": "v1" };
      const body = envelope(0, failing(code));
      const endOf = (raw: Buffer) => JSON.parse(splitFrames(raw).find((f) => f.flags === 2)!.data.toString("utf8"));
      const direct = endOf((await send(`http://${oracle.address}/bridge.test.v1.TestService/ServerStream`, { headers, body })).body);
      const bridged = endOf((await send(`${bridge.baseUrl}/bridge.test.v1.TestService/ServerStream`, { headers, body })).body);
      assert.equal(bridged.error.code, direct.error.code, `code ${code}`);
      assert.equal(bridged.error.message, message, `code ${code}: message`);
      assert.deepEqual(withoutDebug(bridged.error.details), withoutDebug(direct.error.details), `code ${code}: details`);
      assert.deepEqual(bridged.metadata?.["x-trailer-k"], ["v1"], `code ${code}: trailers`);
    }
  });

  it("gRPC-Web +json: grpc-status, grpc-message and grpc-status-details-bin are the upstream's bytes", async () => {
    for (const code of codes) {
      const upstreamAnswer = await grpcExchange(upstream.address, "application/grpc+json", envelope(0, failing(code)));
      const want = statusFields({ ...upstreamAnswer.headers, ...upstreamAnswer.trailers });
      assert.equal(want["grpc-status"], String(code), "the upstream failed the call as asked");
      const res = await send(`${bridge.baseUrl}${unaryPath}`, {
        headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1", "x-echo-k": "v1" },
        body: envelope(0, failing(code)),
      });
      assert.equal(res.status, 200);
      let block: Record<string, string> = res.headers;
      if (res.headers["grpc-status"] === undefined) {
        const trailer = splitFrames(res.body).find((f) => f.flags === 0x80)!;
        block = {};
        for (const line of trailer.data.toString("latin1").split("\r\n")) {
          const i = line.indexOf(":");
          if (i > 0) block[line.slice(0, i)] = line.slice(i + 1).trim();
        }
      }
      assert.deepEqual(statusFields(block), want, `code ${code}`);
      assert.equal(res.headers["x-echo-k"], "v1", `code ${code}: header metadata`);
    }
  });

  it("native gRPC +json: the status fields and metadata are the upstream's bytes", async () => {
    for (const code of codes) {
      const direct = await grpcExchange(upstream.address, "application/grpc+json", envelope(0, failing(code)));
      const bridged = await grpcExchange(`127.0.0.1:${bridge.port}`, "application/grpc+json", envelope(0, failing(code)));
      assert.deepEqual(
        statusFields({ ...bridged.headers, ...bridged.trailers }),
        statusFields({ ...direct.headers, ...direct.trailers }),
        `code ${code}`,
      );
      assert.equal(bridged.headers["x-echo-k"], direct.headers["x-echo-k"], `code ${code}: header metadata`);
    }
  });
});
