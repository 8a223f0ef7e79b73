/**
 * Replicas for cluster tests: real @grpc/grpc-js servers that serve the
 * TestService (answering with their own name in `text`, so a test sees
 * which replica served a call) and the standard grpc.health.v1 service from
 * the grpc-health-check package, optionally over TLS/mTLS.
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { create } from "@bufbuild/protobuf";
import { TestService, EchoResponseSchema, type EchoRequest, type EchoResponse } from "../../gen/bridge/test/v1/test_pb.js";
import type { ClusterOptions } from "../../src/upstream/cluster-options.js";
import type { Upstream } from "../../src/upstream/upstream.js";
import { grpcServiceDefinition } from "./grpc-definition.js";
import { startBridge, type RunningBridge } from "./bridge.js";

export interface Replica {
  name: string;
  port: number;
  address: string;
  /** Calls the TestService handled. */
  calls: number;
  health: HealthImplementation;
  /** Graceful shutdown. */
  close(): Promise<void>;
  /** Drops every connection at once, like a crashed process. */
  kill(): void;
}

export interface ReplicaOptions {
  host?: string;
  port?: number;
  credentials?: grpc.ServerCredentials;
  serverOptions?: grpc.ServerOptions;
}

export async function startReplica(name: string, options: ReplicaOptions = {}): Promise<Replica> {
  const server = new grpc.Server(options.serverOptions);
  const health = new HealthImplementation({ "": "SERVING", "bridge.test.v1.TestService": "SERVING" });
  health.addToServer(server);
  const replica = { calls: 0 } as Replica;
  const answer = (req: EchoRequest, index: number): EchoResponse => create(EchoResponseSchema, { text: name, index, payload: req.payload });
  const never = (_call: unknown, callback?: grpc.sendUnaryData<EchoResponse>) =>
    callback?.({ code: grpc.status.UNIMPLEMENTED, details: "not in this test server" });
  server.addService(grpcServiceDefinition(TestService), {
    unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      replica.calls++;
      const timer = setTimeout(() => callback(null, answer(call.request, 0)), call.request.delayMs);
      call.once("cancelled", () => clearTimeout(timer));
    },
    serverStream: (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      replica.calls++;
      for (let i = 0; i < call.request.responseCount; i++) call.write(answer(call.request, i));
      call.end();
    },
    clientStream: never,
    bidiStream: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      call.end();
    },
  });
  const host = options.host ?? "127.0.0.1";
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${options.port ?? 0}`, options.credentials ?? grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  return Object.assign(replica, {
    name,
    port,
    address: `${host}:${port}`,
    health,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
    kill: () => server.forceShutdown(),
  });
}

/** Cluster options with test-sized intervals; `overrides` win. */
export function clusterOptions(overrides: Partial<ClusterOptions> & Pick<ClusterOptions, "endpoints">): ClusterOptions {
  return {
    name: "test",
    dnsRefreshMs: 30_000,
    authority: overrides.endpoints[0] ?? "localhost",
    lbPolicy: "round_robin",
    tls: undefined,
    maxStreamsPerConnection: 100,
    keepaliveIntervalMs: 0,
    keepaliveTimeoutMs: 10_000,
    maxConnectionAgeMs: 0,
    connectTimeoutMs: 5_000,
    reconnectBaseMs: 10_000,
    reconnectMaxMs: 30_000,
    healthCheck: undefined,
    outlierConsecutiveFailures: 5,
    outlierEjectionMs: 30_000,
    retry: { maxAttempts: 3, budgetPercent: 20, minRetriesPerSecond: 10 },
    ...overrides,
  };
}

/** The bridge in front of an Upstream object (closed with the bridge). */
export async function startClusterBridge(upstream: Upstream): Promise<RunningBridge> {
  const bridge = await startBridge(upstream);
  return {
    ...bridge,
    close: async () => {
      await bridge.close();
      await upstream.close(true);
    },
  };
}

/** A log that records what it is given, for assertions. */
export function recordingLog() {
  const lines: { level: string; message: string }[] = [];
  const record = (level: string) => (obj: unknown, message?: string) => {
    lines.push({ level, message: message ?? String(obj) });
  };
  return { lines, log: { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") } };
}

/** Polls `condition` until true; for states that have no event (health, DNS rounds). */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
