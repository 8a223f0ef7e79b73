// The bridge as benchmarked: createBridge with logging off. Prints its port.
import { createBridge } from "../dist/src/index.js";

// SCHEMA=FILE loads a descriptor set (and REFLECTION=1 turns reflection on): the
// proto path must cost the same with a schema as without.
const schema = process.env.SCHEMA || process.env.REFLECTION
  ? { descriptorSets: process.env.SCHEMA ? [process.env.SCHEMA] : [], reflection: process.env.REFLECTION === "1" }
  : undefined;
const app = createBridge({ upstream: process.env.UPSTREAM ?? "127.0.0.1:50051", schema });
await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
console.log(app.server.address().port);
// A clean exit on signals, so `node --cpu-prof` writes its profile.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
