// Baseline 4: @grpc-web/proxy, the npm gRPC-Web proxy for Node, used as its
// README shows (a target URL). Prints its port.
import { createRequire } from "node:module";

const proxy = createRequire(import.meta.url)("@grpc-web/proxy");
const server = proxy({ target: `http://${process.env.UPSTREAM ?? "127.0.0.1:50051"}` }).listen(
  Number(process.env.PORT ?? 0),
  "127.0.0.1",
  () => console.log(server.address().port),
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
