// Does a burst of cancelled calls make a Node gRPC server refuse later ones?
// `node bench/cancel-burst.mjs [--upstream echo|grpc-js] [--size 65536] [--cancel 256]`
// opens one node:http2 session to the upstream, checks that 20 calls
// succeed, starts `--cancel` calls of `--size` bytes and resets them all
// with CANCEL while in flight (what the bridge does when that many clients
// go away), then counts how 20 new calls on the same session end, at once,
// 2 s later, and one on a new session. No bridge involved: it shows what an
// upstream does to the connection the bridge keeps (issue 15's fourth pass:
// the 64 KiB c256 cell's 429 answers are these refusals).
import * as http2 from "node:http2";
import { parseArgs } from "node:util";
import { startServer } from "./lib/processes.mjs";

const { values } = parseArgs({
  options: {
    upstream: { type: "string", default: "echo" },
    size: { type: "string", default: "65536" },
    cancel: { type: "string", default: "256" },
  },
});
const here = (path) => new URL(path, import.meta.url).pathname;
const server = await startServer(values.upstream, here(`servers/${values.upstream === "grpc-js" ? "grpc-js" : "echo"}-upstream.mjs`), { cores: "1" });
const size = Number(values.size);
// bridge.test.v1.EchoRequest{payload: size - 4 bytes} (field 2, a 3-byte length), enveloped.
const payload = size - 4;
const message = Buffer.concat([Buffer.from([0x12, 0x80 | (payload & 127), 0x80 | ((payload >> 7) & 127), payload >> 14]), Buffer.alloc(payload, 120)]);
const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
frame.writeUInt32BE(message.length, 1);
const url = `http://127.0.0.1:${server.port}`;

const open = (session) => {
  const stream = session.request({ ":method": "POST", ":path": "/bridge.test.v1.TestService/Unary", "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  stream.end(frame);
  return stream;
};
/** The RST_STREAM codes 20 new calls end with: {"0": 20} is every call fine, 11 is ENHANCE_YOUR_CALM. */
async function outcomes(session, n = 20) {
  const codes = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve) => {
      const stream = open(session);
      stream.resume();
      stream.on("close", () => resolve(stream.rstCode));
    })),
  );
  const counts = {};
  for (const code of codes) counts[code] = (counts[code] ?? 0) + 1;
  return JSON.stringify(counts);
}

const session = http2.connect(url);
console.log(`${values.upstream} upstream, ${size} B calls; rst codes of 20 calls (0: fine, 11: ENHANCE_YOUR_CALM)`);
console.log(`before:                         ${await outcomes(session)}`);
const burst = Array.from({ length: Number(values.cancel) }, () => open(session));
// Let the requests reach the server, then reset whichever are still open.
await new Promise((resolve) => setTimeout(resolve, 30));
let cancelled = 0;
for (const stream of burst) {
  if (stream.closed) continue;
  cancelled++;
  stream.close(http2.constants.NGHTTP2_CANCEL);
}
console.log(`after ${String(cancelled).padStart(4)} cancelled in flight: ${await outcomes(session)}`);
await new Promise((resolve) => setTimeout(resolve, 2000));
console.log(`2 s later:                      ${await outcomes(session)}`);
const fresh = http2.connect(url);
console.log(`on a new session:               ${await outcomes(fresh)}`);
session.close();
fresh.close();
await server.stop();
