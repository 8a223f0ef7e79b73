// A @grpc/grpc-js echo server: the upstream most Node teams run, for the one
// scenario that reports the bridge in front of a real gRPC implementation.
// Messages are not decoded (identity serializers), so grpc-js's transport is
// what is measured. Prints its port.
import * as grpc from "@grpc/grpc-js";

const identity = (value) => value;
const method = (name, responseStream) => ({
  path: `/bridge.test.v1.TestService/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const server = new grpc.Server();
server.addService(
  { Unary: method("Unary", false), ServerStream: method("ServerStream", true) },
  {
    Unary: (call, callback) => callback(null, call.request),
    ServerStream: (call) => {
      let left = Number(call.metadata.get("x-count")[0] ?? 1);
      const pump = () => {
        while (left > 0) {
          left--;
          if (!call.write(call.request)) return void call.once("drain", pump);
        }
        call.end();
      };
      pump();
    },
  },
);
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(port);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
