/**
 * A gRPC server reflection (v1) service over grpc-js that answers with
 * descriptors exactly as buf built them, options and all, as grpc-go and
 * connect-go do. @grpc/reflection cannot stand in here: it decodes and
 * re-encodes every file with protobufjs, which drops the options'
 * extensions (google.api.http among them).
 */
import type * as grpc from "@grpc/grpc-js";
import { create, toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ServerReflection,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { grpcServiceDefinition } from "./grpc-definition.js";

/** Adds ServerReflection for `files` (and what they import) to `server`. */
export function addDescriptorReflection(server: grpc.Server, files: DescFile[]): void {
  const byName = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (byName.has(file.name)) return;
    byName.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  files.forEach(visit);
  const bytes = (file: DescFile) => toBinary(FileDescriptorProtoSchema, file.proto);
  const answer = (request: ServerReflectionRequest): ServerReflectionResponse["messageResponse"] => {
    const m = request.messageRequest;
    if (m.case === "listServices") {
      return { case: "listServicesResponse", value: { service: files.flatMap((f) => f.services.map((s) => ({ name: s.typeName }))) } as never };
    }
    let file: DescFile | undefined;
    if (m.case === "fileByFilename") file = byName.get(m.value.endsWith(".proto") ? m.value.slice(0, -6) : m.value);
    if (m.case === "fileContainingSymbol") {
      file = [...byName.values()].find((f) => m.value.startsWith(f.proto.package + ".") && (f.services.some((s) => s.typeName === m.value) || f.messages.some((s) => s.typeName === m.value)));
    }
    if (file === undefined) return { case: "errorResponse", value: { errorCode: 5, errorMessage: `not found: ${String(m.value)}` } as never };
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: [bytes(file)] } as never };
  };
  server.addService(grpcServiceDefinition(ServerReflection), {
    serverReflectionInfo: (call: grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>) => {
      call.on("data", (request: ServerReflectionRequest) => {
        call.write(create(ServerReflectionResponseSchema, { originalRequest: request, messageResponse: answer(request) }));
      });
      call.on("end", () => call.end());
    },
  });
}
