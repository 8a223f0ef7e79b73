/**
 * A proto-only @grpc/grpc-js upstream for the schema tests: the TestService,
 * a WellKnownService that echoes its request bytes unchanged, and optionally
 * @grpc/reflection (which can be taken down mid-run). Also builds the
 * descriptor set with buf, as a user would.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_bridge_test_v1_test } from "../../gen/bridge/test/v1/test_pb.js";
import { file_bridge_test_v1_wkt } from "../../gen/bridge/test/v1/wkt_pb.js";
import { startGrpcJsServer, type RunningServer } from "./grpc-js-server.js";

export interface SchemaUpstream extends RunningServer {
  /** Request messages WellKnownService.Echo received, as bytes. */
  received: Buffer[];
  /** Reflection streams the server has served. */
  stats: { reflectionStreams: number };
  /** Removes the reflection services (or one version): later calls to them get UNIMPLEMENTED. */
  stopReflection(version?: "v1" | "v1alpha"): void;
  /** Replaces the reflection services with ones that describe every service (a redeploy). */
  reflectEverything(): void;
}

const root = new URL("../../../", import.meta.url).pathname;

/** `buf build -o FILE` of the project's proto/ directory, FILE in a temporary folder of its own that the caller removes; returns FILE. */
export async function buildDescriptorSet(): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), "bridge-schema-")), "schema.binpb");
  await promisify(execFile)(join(root, "node_modules/.bin/buf"), ["build", "-o", out], { cwd: root });
  return out;
}

/** Every file `files` need, themselves included, as serialized FileDescriptorProtos. */
export function fileDescriptorProtos(files: DescFile[]): Buffer[] {
  const seen = new Map<string, Buffer>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    for (const dep of file.dependencies) visit(dep);
    seen.set(file.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  };
  files.forEach(visit);
  return [...seen.values()];
}

const allFiles = [file_bridge_test_v1_test, file_bridge_test_v1_wkt];

export async function startSchemaUpstream(options: { reflection: boolean; reflectOnlyTestService?: boolean }): Promise<SchemaUpstream> {
  const received: Buffer[] = [];
  const stats = { reflectionStreams: 0 };
  const reflectionServices: grpc.ServiceDefinition[] = [];
  let grpcServer: grpc.Server | undefined;
  const server = await startGrpcJsServer((s) => {
    grpcServer = s;
    const raw = (b: Buffer) => b;
    s.addService(
      {
        echo: {
          path: "/bridge.test.v1.WellKnownService/Echo",
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      } as grpc.ServiceDefinition,
      {
        echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          received.push(call.request);
          callback(null, call.request);
        },
      },
    );
    if (options.reflection) addReflection(s, options.reflectOnlyTestService ? [file_bridge_test_v1_test] : allFiles);
  });
  function addReflection(s: grpc.Server, files: DescFile[]): void {
    // The package definition @grpc/reflection reads: file descriptors by service.
    const protos = fileDescriptorProtos(files);
    const definition = Object.fromEntries(files.flatMap((f) => f.services).map((service) => [service.typeName, { fileDescriptorProtos: protos }]));
    new ReflectionService(definition as never).addToServer({
      addService: (service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) => {
        reflectionServices.push(service);
        const counted = Object.fromEntries(
          Object.entries(implementation).map(([name, handler]) => [
            name,
            (call: never) => {
              stats.reflectionStreams++;
              (handler as (call: never) => void)(call);
            },
          ]),
        );
        s.addService(service, counted as grpc.UntypedServiceImplementation);
      },
    });
  }
  return {
    ...server,
    received,
    stats,
    reflectEverything: () => {
      for (const service of reflectionServices.splice(0)) grpcServer!.removeService(service);
      addReflection(grpcServer!, allFiles);
    },
    stopReflection: (version) => {
      for (const service of reflectionServices) {
        const path = Object.values(service)[0].path;
        if (version === undefined || path.startsWith(`/grpc.reflection.${version}.`)) grpcServer!.removeService(service);
      }
    },
  };
}
