/**
 * The bridge's own gRPC calls (health checks, server reflection) take the
 * attempt layer of client calls, with its response-size limit: an answer
 * past the limit ends the call instead of being buffered whole (the two
 * small clients used to buffer without any limit).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createCluster, type Cluster } from "../../src/upstream/cluster.js";
import { fetchReflectedSchema } from "../../src/schema/reflection-client.js";
import { clusterOptions, recordingLog, until } from "../support/replicas.js";

/** A gRPC server answering every call with response headers and `frame`, status OK. */
async function answeringServer(frame: Buffer) {
  const paths: string[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    paths.push(String(headers[":path"]));
    stream.on("error", () => {});
    stream.resume();
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function envelope(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** HealthCheckResponse{status: SERVING} followed by a 64 KiB unknown field (15, bytes): valid, and large. */
const bigServing = envelope(Buffer.concat([Buffer.from([0x08, 0x01, 0x7a, 0x80, 0x80, 0x04]), Buffer.alloc(65536, 1)]));

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) await cleanup();
});

/** A cluster health-checking a server whose SERVING answer is 64 KiB, with the given response limit. */
async function healthCheckedBigServing(maxResponseMessageBytes: number) {
  const server = await answeringServer(bigServing);
  cleanups.push(() => server.close());
  const cluster = createCluster(
    clusterOptions({
      endpoints: [server.address],
      healthCheck: { service: "", intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
    }),
    recordingLog().log,
    { maxResponseMessageBytes },
  ) as Cluster;
  cleanups.push(() => cluster.close(true));
  return { server, cluster };
}

describe("the bridge's own calls keep the response-size limit", () => {
  it("a health check answer past maxResponseMessageBytes fails the check (was buffered whole, and read as SERVING)", async () => {
    const { server, cluster } = await healthCheckedBigServing(1024);
    await until(() => cluster.usableAddresses().length === 0, "the endpoint to fail its check");
    assert.ok(server.paths.includes("/grpc.health.v1.Health/Check"));
    assert.throws(
      () => cluster.request({}),
      /failing health checks \(health check: upstream response message of 65542 bytes exceeds the limit of 1024\)/,
    );
  });

  it("the same answer within the limit is SERVING: the limit, not the answer, failed the check above", async () => {
    const { server, cluster } = await healthCheckedBigServing(1 << 20);
    await until(() => server.paths.length >= 3, "three checks");
    assert.deepEqual(cluster.usableAddresses(), [server.address]);
  });

  it("a reflection answer past the limit fails the fetch naming the limit (was buffered whole)", async () => {
    const server = await answeringServer(envelope(Buffer.alloc(65536, 1)));
    cleanups.push(() => server.close());
    const cluster = createCluster(clusterOptions({ name: "refl", endpoints: [server.address] }), recordingLog().log);
    cleanups.push(() => cluster.close(true));
    await assert.rejects(
      fetchReflectedSchema(cluster, 5000, 1024),
      /^Error: reflection of refl \(\/grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo\) failed: upstream response message of 65536 bytes exceeds the limit of 1024$/,
    );
  });
});
