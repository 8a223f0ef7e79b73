// Baseline 2: the thinnest possible Connect-to-gRPC bridge in Node — a plain
// node:http server and one reused node:http2 session, no validation, no error
// mapping. Unary proto (application/proto) is buffered like any unary bridge
// must; Connect streams (application/connect+proto) are piped both ways,
// since Connect and gRPC envelopes are the same bytes, and closed with an
// empty end-stream message. The ceiling for this architecture.
import * as http from "node:http";
import * as http2 from "node:http2";
import { unaryCall, upstreamCall } from "./thin-upstream.mjs";

const endStream = Buffer.from([2, 0, 0, 0, 2, 0x7b, 0x7d]); // flags 0x02, "{}"
const server = http.createServer((req, res) => {
  if (req.headers["content-type"] === "application/connect+proto") {
    const stream = upstreamCall(req, res);
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
  unaryCall(req, res);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => console.log(server.address().port));
