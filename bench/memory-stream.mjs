// Memory under a slow reader: a 1 GiB Connect server stream from a flooding
// upstream to a client that reads at a throttled rate. The bridge runs in its
// own process so its RSS is its own; sampled from /proc every 100 ms.
//   npm run build && node bench/memory-stream.mjs [--gib 1] [--mbps 100]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { startFlowUpstream } from "../dist/test/support/flow-upstream.js";

const { values } = parseArgs({ options: { gib: { type: "string", default: "1" }, mbps: { type: "string", default: "100" } } });
const total = Math.round(Number(values.gib) * 1024 ** 3);
const bytesPerSecond = Number(values.mbps) * 1024 * 1024;

const upstream = await startFlowUpstream(total);
const bridge = spawn(process.execPath, [new URL("./servers/bridge-server.mjs", import.meta.url).pathname], {
  env: { ...process.env, UPSTREAM: upstream.address },
  stdio: ["ignore", "pipe", "inherit"],
});
const [portLine] = await once(bridge.stdout, "data");
const port = Number(String(portLine).trim());
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${bridge.pid}/status`, "utf8"))[1]) / 1024;

const baseline = rssMiB();
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 100);

const started = Date.now();
const req = request({ port, host: "127.0.0.1", path: "/flow.v1.Flow/Flood", method: "POST", headers: { "content-type": "application/connect+proto" } });
req.end(Buffer.from([0, 0, 0, 0, 0]));
const [res] = await once(req, "response");
let received = 0;
let lastReport = Date.now();
res.on("data", (chunk) => {
  received += chunk.length;
  // Throttle: pause long enough to hold the average at bytesPerSecond.
  const ahead = received / bytesPerSecond - (Date.now() - started) / 1000;
  if (ahead > 0.01) {
    res.pause();
    setTimeout(() => res.resume(), ahead * 1000);
  }
  if (Date.now() - lastReport > 2000) {
    lastReport = Date.now();
    process.stdout.write(`  ${(received / 1024 ** 2).toFixed(0)} MiB read, bridge RSS ${rssMiB().toFixed(1)} MiB\n`);
  }
});
await once(res, "end");
clearInterval(sampler);
const seconds = (Date.now() - started) / 1000;
const final = rssMiB();
console.log(
  JSON.stringify({
    streamedMiB: Math.round(received / 1024 ** 2),
    seconds: Number(seconds.toFixed(1)),
    readerMiBps: Number((received / 1024 ** 2 / seconds).toFixed(1)),
    bridgeRssMiB: { baseline: Number(baseline.toFixed(1)), peak: Number(peak.toFixed(1)), final: Number(final.toFixed(1)) },
    upstreamAheadOfReaderAtEndMiB: Number(((upstream.flooded() - received) / 1024 ** 2).toFixed(1)),
  }),
);
bridge.kill("SIGTERM");
await upstream.close();
