// The bridge as benchmarked, with a schema loaded when SCHEMA=FILE (a
// descriptor set): the proto path must cost the same either way; REST=1
// also serves the schema's google.api.http bindings. Prints its port.
import { createBridge } from "../../dist/src/index.js";

const schema = process.env.SCHEMA ? { descriptorSets: [process.env.SCHEMA] } : undefined;
const rest = { enabled: process.env.REST === "1" };
const app = createBridge({ upstream: process.env.UPSTREAM ?? "127.0.0.1:50051", schema, rest });
await app.listen({ port: 0, host: "127.0.0.1" });
console.log(app.server.address().port);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
