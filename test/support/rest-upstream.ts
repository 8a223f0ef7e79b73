/**
 * The REST test upstream: a @grpc/grpc-js server whose services come from
 * @grpc/proto-loader over proto/bridge/test/rest/v1/rest.proto (the
 * google.api.http-annotated test proto), as a Node gRPC team would write
 * it. It records every request message's bytes, so a test can decode what
 * a REST request became and compare it with what http.proto says it means.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { create, fromBinary, toBinary, type DescFile } from "@bufbuild/protobuf";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { FailureDetailSchema, file_bridge_test_rest_v1_rest } from "../../gen/bridge/test/rest/v1/rest_pb.js";
import { encodeRpcStatus } from "./grpc-definition.js";

export interface RestUpstream {
  address: string;
  /** Request message bytes by method path (`/bridge.test.rest.v1.Library/QueryBooks`), in arrival order. */
  received: Map<string, Buffer[]>;
  /** Request metadata of the last call, by method path. */
  metadata: Map<string, Record<string, unknown>>;
  close(): Promise<void>;
}

const protoRoot = new URL("../../../proto", import.meta.url).pathname;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Call = grpc.ServerUnaryCall<any, any>;

/** x-test in, x-test-echo header and x-trailer trailer out: metadata both ways. */
function echoMetadata(call: Call | grpc.ServerWritableStream<any, any>): grpc.Metadata {
  const trailer = new grpc.Metadata();
  const value = call.metadata.get("x-test")[0];
  if (value !== undefined) {
    const header = new grpc.Metadata();
    header.set("x-test-echo", String(value));
    call.sendMetadata(header);
    trailer.set("x-trailer", String(value));
  }
  return trailer;
}

function failure(code: number, message: string, withDetails: boolean): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (withDetails) {
    const detail = toBinary(FailureDetailSchema, create(FailureDetailSchema, { reason: "test-reason", retryAfterMs: 1500n }));
    metadata.set("grpc-status-details-bin", encodeRpcStatus(code, message, [{ typeName: FailureDetailSchema.typeName, value: detail }]));
  }
  return { code, details: message, metadata };
}

/** rest.proto and everything it imports, as serialized FileDescriptorProtos (what protoc/buf-based reflection serves). */
function fileDescriptorProtos(root: DescFile): Buffer[] {
  const seen = new Map<string, Buffer>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    for (const dep of file.dependencies) visit(dep);
    seen.set(file.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  };
  visit(root);
  return [...seen.values()];
}

/**
 * grpc.reflection.v1 answering with the descriptor bytes as built, the way
 * grpc-go, grpc-java and connect-go serve them. @grpc/reflection cannot
 * stand in here: it re-encodes every file with protobufjs, which drops the
 * method options' google.api.http extension.
 */
function addVerbatimReflection(server: grpc.Server, root: DescFile): void {
  const protos = fileDescriptorProtos(root);
  const raw = (b: Buffer) => b;
  server.addService(
    {
      serverReflectionInfo: {
        path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        requestStream: true,
        responseStream: true,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    } as grpc.ServiceDefinition,
    {
      serverReflectionInfo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", (bytes: Buffer) => {
          const request = fromBinary(ServerReflectionRequestSchema, bytes);
          const answer: ServerReflectionResponse["messageResponse"] =
            request.messageRequest.case === "listServices"
              ? { case: "listServicesResponse", value: { service: root.services.map((s) => ({ name: s.typeName })) } as never }
              : { case: "fileDescriptorResponse", value: { fileDescriptorProto: protos } as never };
          call.write(Buffer.from(toBinary(ServerReflectionResponseSchema, create(ServerReflectionResponseSchema, { messageResponse: answer }))));
        });
        call.on("end", () => call.end());
      },
    },
  );
}

/** With `reflection`, the server also answers grpc.reflection.v1 for both services. */
export async function startRestUpstream(options: { reflection?: boolean } = {}): Promise<RestUpstream> {
  const definition = protoLoader.loadSync("bridge/test/rest/v1/rest.proto", { includeDirs: [protoRoot], defaults: false });
  const received = new Map<string, Buffer[]>();
  const metadata = new Map<string, Record<string, unknown>>();
  const recorded = (service: grpc.ServiceDefinition): grpc.ServiceDefinition => {
    const out: Record<string, grpc.MethodDefinition<any, any>> = {};
    for (const [name, method] of Object.entries(service)) {
      out[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          const list = received.get(method.path) ?? [];
          list.push(Buffer.from(bytes));
          received.set(method.path, list);
          return method.requestDeserialize(bytes);
        },
      };
    }
    return out as grpc.ServiceDefinition;
  };
  const pkg = definition as unknown as Record<string, grpc.ServiceDefinition>;
  const note = (path: string, call: Call | grpc.ServerWritableStream<any, any>) => metadata.set(path, call.metadata.getMap());
  const echo = (path: string) => (call: Call, callback: grpc.sendUnaryData<any>) => {
    note(path, call);
    const trailer = echoMetadata(call);
    callback(null, call.request, trailer);
  };
  const server = new grpc.Server();
  const messaging = "/bridge.test.rest.v1.Messaging/";
  server.addService(recorded(pkg["bridge.test.rest.v1.Messaging"]), {
    GetMessageByName: echo(messaging + "GetMessageByName"),
    GetMessage: echo(messaging + "GetMessage"),
    UpdateMessage: echo(messaging + "UpdateMessage"),
    UpdateMessageAll: echo(messaging + "UpdateMessageAll"),
  });
  const library = "/bridge.test.rest.v1.Library/";
  server.addService(recorded(pkg["bridge.test.rest.v1.Library"]), {
    QueryBooks: echo(library + "QueryBooks"),
    CreateBook: echo(library + "CreateBook"),
    PublishBook: echo(library + "PublishBook"),
    SearchBooks: echo(library + "SearchBooks"),
    GetFile: echo(library + "GetFile"),
    EchoRaw: echo(library + "EchoRaw"),
    ReplaceBook: (call: Call, callback: grpc.sendUnaryData<any>) => callback(null, call.request.book),
    DeleteBook: (_call: Call, callback: grpc.sendUnaryData<any>) => callback(null, {}),
    ListBooks: (call: Call, callback: grpc.sendUnaryData<any>) =>
      callback(null, {
        books: [
          { name: `${call.request.parent}/books/1`, title: "One" },
          { name: `${call.request.parent}/books/2`, title: "Two" },
        ],
        nextPageToken: "next",
      }),
    UploadCover: (call: Call, callback: grpc.sendUnaryData<any>) =>
      callback(null, {
        contentType: call.request.cover?.contentType ?? "",
        data: Buffer.concat([Buffer.from(`${call.request.name}:`), call.request.cover?.data ?? Buffer.alloc(0)]),
      }),
    Fail: (call: Call, callback: grpc.sendUnaryData<any>) => {
      const trailer = echoMetadata(call);
      const fail = failure(call.request.code, call.request.message, call.request.withDetails === true);
      for (const [key, value] of Object.entries(trailer.getMap())) fail.metadata!.set(key, value);
      callback(fail);
    },
    WatchShelf: (call: grpc.ServerWritableStream<any, any>) => {
      note(library + "WatchShelf", call);
      const trailer = echoMetadata(call);
      const { shelf, count = 0, failCode = 0 } = call.request;
      for (let i = 0; i < count; i++) call.write({ name: `${shelf}/books/${i}`, title: `Book ${i}` });
      if (failCode !== 0) call.emit("error", failure(failCode, "watch failed", true));
      else call.end(trailer);
    },
  });
  if (options.reflection) addVerbatimReflection(server, file_bridge_test_rest_v1_rest);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  return {
    address: `127.0.0.1:${port}`,
    received,
    metadata,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
