// Opens many Connect server streams through the bridge at once, over h2c
// (100 streams per connection, as browsers and gRPC clients multiplex), and
// holds them open: the upstream's /Hold method sends one message and then
// nothing. Run by run.mjs as a child with IPC: reports {opened} once every
// stream has its first message, closes everything on "close".
import * as http2 from "node:http2";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string" }, streams: { type: "string", default: "10000" } },
});
const total = Number(values.streams);
const perConnection = 100;
const message = Buffer.from([0, 0, 0, 0, 2, 0x12, 0]); // EchoRequest{payload: ""}, enveloped
const sessions = [];
let opened = 0;
const started = Date.now();
for (let i = 0; i < total; i += perConnection) {
  const session = http2.connect(`http://127.0.0.1:${values.port}`);
  session.on("error", (error) => {
    process.send?.({ error: String(error) });
  });
  sessions.push(session);
  for (let j = i; j < Math.min(total, i + perConnection); j++) {
    const stream = session.request({
      ":method": "POST",
      ":path": "/bridge.test.v1.TestService/Hold",
      "content-type": "application/connect+proto",
    });
    stream.on("error", () => {});
    stream.end(message);
    stream.once("data", () => {
      if (++opened === total) process.send?.({ opened, ms: Date.now() - started });
    });
  }
}
process.on("message", (command) => {
  if (command !== "close") return;
  for (const session of sessions) session.destroy();
  process.exit(0);
});
