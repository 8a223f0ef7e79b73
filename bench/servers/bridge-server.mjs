// The bridge as benchmarked: createBridge with logging off. Prints its port.
import { createBridge } from "../../dist/src/index.js";

const app = createBridge({ upstream: process.env.UPSTREAM ?? "127.0.0.1:50051" });
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
console.log(app.server.address().port);
// A clean exit on signals, so `node --cpu-prof` writes its profile.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
