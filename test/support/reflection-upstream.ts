/**
 * The ShapeService (proto/bridge/test/reflect/v1) on a @grpc/grpc-js server
 * set up as Node users do: services from @grpc/proto-loader, reflection from
 * @grpc/reflection. Reflection serves either the descriptors protobufjs built
 * from the .proto (what `new ReflectionService(packageDefinition)` does) or
 * the ones buf built (as grpc-go, grpc-java and connect-go servers serve
 * protoc's), over the same service implementation. Request bytes are
 * recorded as they arrived, before proto-loader decodes them.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { file_bridge_test_reflect_v1_shapes } from "../../gen/bridge/test/reflect/v1/shapes_pb.js";
import { startGrpcJsServer, type RunningServer } from "./grpc-js-server.js";
import { fileDescriptorProtos } from "./schema-upstream.js";

export type ReflectedDescriptors =
  /** protobufjs's, from proto-loader's package definition, field names camelCase (proto-loader's default). */
  | "proto-loader"
  /** protobufjs's with proto-loader's `keepCase: true`: field names as in the .proto. */
  | "proto-loader-keep-case"
  /** buf's (protoc-equivalent) FileDescriptorProtos. */
  | "buf";

export interface ReflectionUpstream extends RunningServer {
  /** Request messages the ShapeService received, as bytes. */
  received: Buffer[];
}

const protoDir = new URL("../../../proto", import.meta.url).pathname;

/** The package definition proto-loader builds from shapes.proto, as a user's server loads it. */
export function loadShapes(keepCase: boolean): protoLoader.PackageDefinition {
  return protoLoader.loadSync("bridge/test/reflect/v1/shapes.proto", { includeDirs: [protoDir], keepCase, longs: String, enums: String });
}


/**
 * @param extra more services and their reflection entries, for a server that
 *   also describes something broken (`fileDescriptorProtos` as sent).
 */
export async function startReflectionUpstream(
  descriptors: ReflectedDescriptors,
  extra?: { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation; reflected: Record<string, { fileDescriptorProtos: Buffer[] }> },
): Promise<ReflectionUpstream> {
  const received: Buffer[] = [];
  const definition = loadShapes(descriptors === "proto-loader-keep-case");
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    bridge: { test: { reflect: { v1: { ShapeService: grpc.ServiceClientConstructor } } } };
  };
  const service = loaded.bridge.test.reflect.v1.ShapeService.service;
  const recorded = Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          received.push(Buffer.from(bytes));
          return method.requestDeserialize(bytes);
        },
      },
    ]),
  ) as grpc.ServiceDefinition;
  const reflected =
    descriptors === "buf"
      ? { "bridge.test.reflect.v1.ShapeService": { fileDescriptorProtos: fileDescriptorProtos([file_bridge_test_reflect_v1_shapes]) } }
      : definition;
  const server = await startGrpcJsServer((s) => {
    s.addService(recorded, {
      get: (call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => callback(null, call.request),
      list: (call: grpc.ServerWritableStream<{ repeat?: number }, object>) => {
        for (let i = 0; i < Math.max(1, call.request.repeat ?? 0); i++) call.write(call.request);
        call.end();
      },
      rename: (call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => callback(null, call.request),
    });
    if (extra !== undefined) s.addService(extra.definition, extra.implementation);
    new ReflectionService({ ...reflected, ...extra?.reflected } as never).addToServer(s);
  });
  return { ...server, received };
}
