/**
 * The TestService on a real @grpc/grpc-js server: the kind of legacy gRPC
 * server the bridge exists for. Proto only, like almost every gRPC server.
 */
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  TestService,
  EchoResponseSchema,
  ErrorDetailSchema,
  type EchoRequest,
  type EchoResponse,
} from "../../gen/bridge/test/v1/test_pb.js";
import { encodeRpcStatus, grpcServiceDefinition } from "./grpc-definition.js";
import { Observations } from "./observations.js";

/** What every grpc-js call object offers for cancellation. */
type CancellableCall = {
  cancelled: boolean;
  once(event: "cancelled", listener: () => void): unknown;
  off(event: "cancelled", listener: () => void): unknown;
};

export interface RunningServer {
  port: number;
  address: string;
  observations: Observations;
  close(): Promise<void>;
}

function echoMetadata(incoming: grpc.Metadata): { header: grpc.Metadata; trailer: grpc.Metadata } {
  const header = new grpc.Metadata();
  const trailer = new grpc.Metadata();
  for (const [key, values] of Object.entries(incoming.toJSON())) {
    if (!key.startsWith("x-echo-")) continue;
    for (const value of values) {
      header.add(key, value as never);
      trailer.add("x-trailer-" + key.slice("x-echo-".length), value as never);
    }
  }
  return { header, trailer };
}

function response(req: EchoRequest, index: number): EchoResponse {
  return create(EchoResponseSchema, {
    text: req.text,
    payload: req.responseSize > 0 ? Buffer.alloc(req.responseSize, index % 256) : req.payload,
    index,
  });
}

function failure(req: EchoRequest, trailer: grpc.Metadata): Partial<grpc.StatusObject> {
  const fail = req.fail!;
  if (fail.withDetails) {
    const detail = toBinary(ErrorDetailSchema, create(ErrorDetailSchema, { reason: "test-reason", retryAfterMs: 1500n }));
    trailer.set(
      "grpc-status-details-bin",
      encodeRpcStatus(fail.code, fail.message, [{ typeName: ErrorDetailSchema.typeName, value: detail }]),
    );
  }
  return { code: fail.code, details: fail.message, metadata: trailer };
}

function delay(ms: number, call: CancellableCall): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const onCancel = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      call.off("cancelled", onCancel);
      resolve();
    }, ms);
    call.once("cancelled", onCancel);
  });
}

/** `configure` may add services (reflection, the well-known-types echo) before the server binds. */
export async function startGrpcJsServer(configure?: (server: grpc.Server) => void): Promise<RunningServer> {
  const observations = new Observations();
  const watch = (call: CancellableCall, id: () => string) => {
    call.once("cancelled", () => observations.markCancelled(id()));
  };
  const server = new grpc.Server();
  server.addService(grpcServiceDefinition(TestService), {
    unary: async (call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const req = call.request;
      observations.metadata.set(req.text, call.metadata.toJSON() as Record<string, string[]>);
      observations.markArrived(req.text);
      watch(call, () => req.text);
      const { header, trailer } = echoMetadata(call.metadata);
      call.sendMetadata(header);
      await delay(req.delayMs, call);
      if (call.cancelled) return;
      if (req.fail) callback(failure(req, trailer));
      else callback(null, response(req, 0), trailer);
    },
    serverStream: async (call: grpc.ServerWritableStream<EchoRequest, EchoResponse>) => {
      const req = call.request;
      watch(call, () => req.text);
      const { header, trailer } = echoMetadata(call.metadata);
      call.sendMetadata(header);
      for (let i = 0; i < req.responseCount; i++) {
        await delay(req.delayMs, call);
        if (call.cancelled) return;
        call.write(response(req, i));
      }
      if (req.fail) call.emit("error", failure(req, trailer));
      else call.end(trailer);
    },
    clientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoResponse>, callback: grpc.sendUnaryData<EchoResponse>) => {
      const texts: string[] = [];
      const payloads: Uint8Array[] = [];
      let last: EchoRequest | undefined;
      watch(call, () => texts[0] ?? "");
      const { header, trailer } = echoMetadata(call.metadata);
      call.sendMetadata(header);
      call.on("data", (req: EchoRequest) => {
        texts.push(req.text);
        payloads.push(req.payload);
        last = req;
      });
      call.on("end", () => {
        if (last?.fail) return callback(failure(last, trailer));
        callback(null, create(EchoResponseSchema, { text: texts.join(","), payload: Buffer.concat(payloads), index: texts.length }), trailer);
      });
    },
    bidiStream: (call: grpc.ServerDuplexStream<EchoRequest, EchoResponse>) => {
      let first: string | undefined;
      let index = 0;
      let last: EchoRequest | undefined;
      watch(call, () => first ?? "");
      const { header, trailer } = echoMetadata(call.metadata);
      call.sendMetadata(header);
      call.on("data", (req: EchoRequest) => {
        first ??= req.text;
        last = req;
        call.write(response(req, index++));
      });
      call.on("end", () => {
        if (last?.fail) call.emit("error", failure(last, trailer));
        else call.end(trailer);
      });
    },
  });
  configure?.(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  return {
    port,
    address: `127.0.0.1:${port}`,
    observations,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}
