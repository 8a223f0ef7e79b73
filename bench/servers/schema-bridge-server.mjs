// The bridge as benchmarked, with a schema loaded when SCHEMA=FILE (a
// descriptor set): the proto path must cost the same either way. Prints its port.
import { createBridge } from "../../dist/src/index.js";

const schema = process.env.SCHEMA ? { descriptorSets: [process.env.SCHEMA] } : undefined;
const app = createBridge({ upstream: process.env.UPSTREAM ?? "127.0.0.1:50051", schema });
await app.listen({ port: 0, host: "127.0.0.1" });
console.log(app.server.address().port);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
