// What the thin baselines (thin-bridge.mjs, thin-fastify.mjs) share: one
// reused node:http2 session to the upstream, and the unary proto call
// buffered both ways. No validation, no error mapping: the ceiling.
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
    // As the bridge's: Node's 10 MB session budget counts queued request
    // bytes, and 256 calls of 64 KiB on this one session overflowed it
    // (every stream reset with ENHANCE_YOUR_CALM: 0 req/s in that cell).
    maxSessionMemory: 1 << 16,
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

/** A gRPC stream for `req`'s path on the shared session; a failed one destroys `res`. */
export function upstreamCall(req, res) {
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
}

/** Unary proto: the body buffered into one frame, the answer's frame unwrapped. */
export function unaryCall(req, res) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(body.length, 1);
    const stream = upstreamCall(req, res);
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
}
