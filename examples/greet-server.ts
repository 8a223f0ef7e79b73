/**
 * The example gRPC server `npm start` puts behind the bridge: GreetService on
 * @connectrpc/connect-node with only the gRPC protocol enabled (h2c), so it
 * behaves like any legacy gRPC server — and, unlike most, also accepts
 * application/grpc+json, which lets the printed curl send JSON.
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GreetService } from "../gen/example/v1/greet_pb.js";

export async function startGreetServer(port = 0): Promise<{ address: string; close(): Promise<void> }> {
  const handler = connectNodeAdapter({
    connect: false,
    grpcWeb: false,
    grpc: true,
    routes: (router) =>
      router.service(GreetService, {
        greet: (req) => ({ greeting: `Hello, ${req.name || "world"}!` }),
        async *greetMany(req) {
          for (const word of ["Hello", "Hallo", "Bonjour"]) yield { greeting: `${word}, ${req.name || "world"}!` };
        },
      }),
  });
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { address, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

// `node dist/examples/greet-server.js 50051 50052`: one server per port, for examples/bridge.local.yaml.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const port of process.argv.slice(2)) {
    const server = await startGreetServer(Number(port));
    process.stdout.write(`example GreetService (gRPC, h2c) on ${server.address}\n`);
  }
}
