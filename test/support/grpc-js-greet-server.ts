/**
 * GreetService on a real @grpc/grpc-js server, answering with its own label,
 * so routing tests can tell which replica (of which cluster) served a call.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { GreetService, GreetResponseSchema, type GreetRequest, type GreetResponse } from "../../gen/example/v1/greet_pb.js";
import { grpcServiceDefinition } from "./grpc-definition.js";

export interface GreetServer {
  address: string;
  /** Calls this server has received. */
  calls(): number;
  close(): Promise<void>;
}

export async function startGreetServer(label: string): Promise<GreetServer> {
  let calls = 0;
  const server = new grpc.Server();
  server.addService(grpcServiceDefinition(GreetService), {
    greet: (call: grpc.ServerUnaryCall<GreetRequest, GreetResponse>, callback: grpc.sendUnaryData<GreetResponse>) => {
      calls++;
      callback(null, create(GreetResponseSchema, { greeting: `Hello, ${call.request.name}, from ${label}` }));
    },
    greetMany: (call: grpc.ServerWritableStream<GreetRequest, GreetResponse>) => {
      calls++;
      call.write(create(GreetResponseSchema, { greeting: `Hello, ${call.request.name}, from ${label}` }));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  return {
    address: `127.0.0.1:${port}`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}
