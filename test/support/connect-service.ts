/**
 * The TestService written with @connectrpc/connect, served two ways:
 * as a native gRPC server over h2c (an upstream that also accepts
 * application/grpc+json), and over the Connect protocol directly — the oracle
 * the differential test compares the bridge against.
 */
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  TestService,
  EchoResponseSchema,
  ErrorDetailSchema,
  type EchoRequest,
  type EchoResponse,
} from "../../gen/bridge/test/v1/test_pb.js";
import { Observations } from "./observations.js";
import type { RunningServer } from "./grpc-js-server.js";

function echoMetadata(ctx: HandlerContext): void {
  ctx.requestHeader.forEach((value, key) => {
    if (!key.startsWith("x-echo-")) return;
    ctx.responseHeader.append(key, value);
    ctx.responseTrailer.append("x-trailer-" + key.slice("x-echo-".length), value);
  });
}

function response(req: EchoRequest, index: number): EchoResponse {
  return create(EchoResponseSchema, {
    text: req.text,
    payload: req.responseSize > 0 ? Buffer.alloc(req.responseSize, index % 256) : req.payload,
    index,
  });
}

function failure(req: EchoRequest): ConnectError {
  const fail = req.fail!;
  const details = fail.withDetails
    ? [{ desc: ErrorDetailSchema, value: { reason: "test-reason", retryAfterMs: 1500n } }]
    : [];
  return new ConnectError(fail.message, fail.code as Code, undefined, details);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function testService(observations: Observations): ServiceImpl<typeof TestService> {
  const watch = (ctx: HandlerContext, id: () => string) =>
    ctx.signal.addEventListener("abort", () => observations.markCancelled(id()));
  return {
    async unary(req, ctx) {
      watch(ctx, () => req.text);
      echoMetadata(ctx);
      await delay(req.delayMs, ctx.signal);
      if (req.fail) throw failure(req);
      return response(req, 0);
    },
    async *serverStream(req, ctx) {
      watch(ctx, () => req.text);
      echoMetadata(ctx);
      for (let i = 0; i < req.responseCount; i++) {
        await delay(req.delayMs, ctx.signal);
        yield response(req, i);
      }
      if (req.fail) throw failure(req);
    },
    async clientStream(requests, ctx) {
      echoMetadata(ctx);
      const texts: string[] = [];
      const payloads: Uint8Array[] = [];
      let last: EchoRequest | undefined;
      for await (const req of requests) {
        texts.push(req.text);
        payloads.push(req.payload);
        last = req;
      }
      if (last?.fail) throw failure(last);
      return create(EchoResponseSchema, { text: texts.join(","), payload: Buffer.concat(payloads), index: texts.length });
    },
    async *bidiStream(requests, ctx) {
      echoMetadata(ctx);
      let index = 0;
      let last: EchoRequest | undefined;
      for await (const req of requests) {
        last = req;
        yield response(req, index++);
      }
      if (last?.fail) throw failure(last);
    },
  };
}

/** Native gRPC (h2c) only: Connect and gRPC-Web disabled, as on a legacy server. */
export async function startConnectGrpcServer(): Promise<RunningServer> {
  const observations = new Observations();
  const handler = connectNodeAdapter({
    routes: (router) => router.service(TestService, testService(observations)),
    connect: false,
    grpcWeb: false,
    grpc: true,
  });
  const server = http2.createServer(handler);
  return listen(server, observations);
}

/** Connect over HTTP/1.1 only: the oracle for what a Connect client should see. */
export async function startConnectOracle(): Promise<RunningServer> {
  const observations = new Observations();
  const handler = connectNodeAdapter({
    routes: (router) => router.service(TestService, testService(observations)),
    connect: true,
    grpcWeb: false,
    grpc: false,
  });
  return listen(http.createServer(handler), observations);
}

async function listen(server: http.Server | http2.Http2Server, observations: Observations): Promise<RunningServer> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    observations,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
        setTimeout(resolve, 1000).unref();
      }),
  };
}
