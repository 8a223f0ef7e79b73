/**
 * What node:http2 reports when a stream fails at each point, against real
 * sockets, and what `neverReachedApplication` concludes from it. If a Node
 * upgrade changes any of these, this file says which.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { neverReachedApplication, recordGoaway } from "../../src/upstream/retry-safety.js";

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } = http2.constants;

const servers: http2.Http2Server[] = [];
const serverSessions: http2.ServerHttp2Session[] = [];
function closeServers(): void {
  for (const server of servers) server.close();
  // A server session that sent GOAWAY lingers after the client left (Node v20).
  for (const session of serverSessions) session.destroy();
}

/** A node:http2 server; `onStream` gets each stream and its 1-based number. */
async function server(onStream: (stream: http2.ServerHttp2Stream, n: number) => void): Promise<string> {
  const s = http2.createServer();
  let n = 0;
  s.on("session", (session) => {
    serverSessions.push(session);
    session.on("error", () => {});
  });
  s.on("stream", (stream) => {
    stream.on("error", () => {});
    onStream(stream, ++n);
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`;
}

interface Outcome {
  stream: http2.ClientHttp2Stream;
  session: http2.ClientHttp2Session;
  errorCode: string | undefined;
}

/** Sends `count` requests on one session and waits until every stream closed. */
async function run(origin: string, count: number, watchGoaway = false): Promise<Outcome[]> {
  const session = http2.connect(origin);
  session.on("error", () => {});
  if (watchGoaway) session.on("goaway", (_code, lastStreamId) => recordGoaway(session, lastStreamId));
  const outcomes: Promise<Outcome>[] = [];
  for (let i = 0; i < count; i++) {
    const stream = session.request({ ":method": "POST", ":path": "/a.B/C" });
    let errorCode: string | undefined;
    stream.on("error", (error: NodeJS.ErrnoException) => (errorCode = error.code));
    stream.resume();
    stream.end(Buffer.alloc(5));
    outcomes.push(new Promise((resolve) => stream.on("close", () => resolve({ stream, session, errorCode }))));
    // Streams reach the server in order: the next one only once this one was sent.
    if (i < count - 1) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const results = await Promise.all(outcomes);
  session.destroy();
  return results;
}

describe("node:http2 stream failures and neverReachedApplication", () => {
  after(closeServers);
  it("connection refused: the stream never got an id, ERR_HTTP2_STREAM_CANCEL -> never reached", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const [outcome] = await run(`http://127.0.0.1:${port}`, 1);
    assert.equal(outcome!.stream.id, undefined);
    assert.equal(outcome!.errorCode, "ERR_HTTP2_STREAM_CANCEL");
    assert.equal(neverReachedApplication(outcome!.stream, outcome!.session), true);
  });

  it("RST_STREAM REFUSED_STREAM: rstCode 7 -> never reached", async () => {
    const origin = await server((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const [outcome] = await run(origin, 1);
    assert.equal(outcome!.stream.rstCode, NGHTTP2_REFUSED_STREAM);
    assert.equal(neverReachedApplication(outcome!.stream, outcome!.session), true);
  });

  it("graceful GOAWAY with last-stream-id 1: stream 3 closes with REFUSED_STREAM, stream 1 completes", async () => {
    let first: http2.ServerHttp2Stream | undefined;
    const origin = await server((stream, n) => {
      if (n === 1) first = stream;
      else {
        stream.session!.goaway(NGHTTP2_NO_ERROR, 1);
        first!.respond({ ":status": 200 });
        first!.end();
      }
    });
    const [one, three] = await run(origin, 2);
    assert.equal(three!.stream.id, 3);
    assert.equal(three!.stream.rstCode, NGHTTP2_REFUSED_STREAM);
    assert.equal(neverReachedApplication(three!.stream, three!.session), true);
    assert.equal(one!.stream.rstCode, NGHTTP2_NO_ERROR);
  });

  it("GOAWAY with an error code: both streams get that code; only the recorded last-stream-id tells them apart", async () => {
    const origin = await server((stream, n) => {
      if (n === 2) stream.session!.goaway(NGHTTP2_ENHANCE_YOUR_CALM, 1);
    });
    const [one, three] = await run(origin, 2, true);
    assert.equal(one!.stream.rstCode, NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(three!.stream.rstCode, NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(neverReachedApplication(one!.stream, one!.session), false);
    assert.equal(neverReachedApplication(three!.stream, three!.session), true);
  });

  it("the connection dropped after the request arrived: CANCEL, not provably unprocessed", async () => {
    const origin = await server((stream) => {
      stream.resume();
      stream.on("end", () => stream.session!.destroy());
    });
    const [outcome] = await run(origin, 1);
    assert.equal(outcome!.stream.id, 1);
    assert.equal(outcome!.stream.rstCode, NGHTTP2_CANCEL);
    assert.equal(neverReachedApplication(outcome!.stream, outcome!.session), false);
  });
});
