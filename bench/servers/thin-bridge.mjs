// Baseline 2: the thinnest possible Connect-to-gRPC bridge in Node — a plain
// node:http server and one reused node:http2 session, no validation, no error
// mapping. Unary proto (application/proto) is buffered like any unary bridge
// must; Connect streams (application/connect+proto) are piped both ways,
// since Connect and gRPC envelopes are the same bytes, and closed with an
// empty end-stream message. The ceiling for this architecture.
import * as http from "node:http";
import * as http2 from "node:http2";

// The same connection settings as the bridge's (src/upstream/connection.ts): with
// Node's 64 KiB default window a 64 KiB message waits for a WINDOW_UPDATE.
// A new session when the upstream sends GOAWAY or the session ends (Node's
// http2 server sends GOAWAY after a burst of resets, e.g. when a c256 cell's
// load stops): without it the baseline dies mid-run and every later cell
// measures nothing.
const connect = () => {
  const session = http2.connect(`http://${process.env.UPSTREAM ?? "127.0.0.1:50051"}`, {
    settings: { initialWindowSize: 1 << 20 },
  });
  session.on("connect", () => session.setLocalWindowSize(8 << 20));
  session.on("error", () => {});
  const replace = () => {
    if (upstream === session) upstream = connect();
  };
  session.on("goaway", replace);
  session.on("close", replace);
  return session;
};
let upstream = connect();
const endStream = Buffer.from([2, 0, 0, 0, 2, 0x7b, 0x7d]); // flags 0x02, "{}"
const call = (req, res) => {
  if (upstream.closed || upstream.destroyed) upstream = connect();
  const stream = upstream.request({
    ":method": "POST",
    ":path": req.url,
    "content-type": "application/grpc",
    te: "trailers",
    ...(req.headers["x-count"] ? { "x-count": req.headers["x-count"] } : {}),
  });
  // The one check it has: a failed stream must not take the process down.
  stream.on("error", () => res.destroy());
  return stream;
};
const server = http.createServer((req, res) => {
  if (req.headers["content-type"] === "application/connect+proto") {
    const stream = call(req, res);
    req.pipe(stream);
    res.writeHead(200, { "content-type": "application/connect+proto" });
    stream.pipe(res, { end: false });
    stream.on("end", () => res.end(endStream));
    // A client gone mid-stream (every wrk run ends so) must release its
    // upstream stream: unread, it holds the session's flow-control window,
    // and after two 4 MiB streams the whole session hung. Streams only: the
    // unary path stays as thin as it was.
    res.on("close", () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(body.length, 1);
    const stream = call(req, res);
    const out = [];
    stream.on("data", (c) => out.push(c));
    stream.on("end", () => {
      const frame = Buffer.concat(out);
      const message = frame.subarray(5);
      res.writeHead(200, { "content-type": "application/proto", "content-length": message.length });
      res.end(message);
    });
    stream.end(Buffer.concat([header, body]));
  });
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => console.log(server.address().port));
