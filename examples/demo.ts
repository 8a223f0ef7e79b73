/**
 * `npm start`: the example gRPC server on a free port, the bridge in front of
 * it on PORT (default 8080), and curl commands to paste.
 */
import { createBridge } from "../src/index.js";
import { startGreetServer } from "./greet-server.js";

const port = Number(process.env.PORT ?? 8080);
const upstream = await startGreetServer();
// Any origin may call it: a local-development default, never for production.
const bridge = createBridge({ upstream: upstream.address, cors: { allowedOrigins: "*" } });
try {
  await bridge.listen({ port, host: "127.0.0.1" });
} catch (error) {
  process.stderr.write(`could not listen on port ${port}: ${(error as Error).message}\nTry PORT=8081 npm start\n`);
  process.exit(1);
}
const base = `http://127.0.0.1:${port}`;
process.stdout.write(`connect-grpc-bridge listening on ${base} -> example gRPC server at ${upstream.address}

Try it:

  curl -sS ${base}/example.v1.GreetService/Greet \\
    -H 'content-type: application/json' -d '{"name":"Ada"}'

  curl -sS '${base}/example.v1.GreetService/Greet?encoding=json&message=%7B%22name%22%3A%22Ada%22%7D'

Press Ctrl+C to stop.
`);
const stop = async () => {
  await bridge.close();
  await upstream.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
