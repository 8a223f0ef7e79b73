// Minimal h2c gRPC-ish server for probe.mjs. Runs in a forked child so the
// server never competes with the client under test for the same event loop.
import http2 from 'node:http2';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;
const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

// Build a gRPC length-prefixed envelope (flag 0 + u32 BE length + payload).
function envelope(payload) {
  const buf = Buffer.allocUnsafe(5 + payload.length);
  buf[0] = 0;
  buf.writeUInt32BE(payload.length, 1);
  payload.copy(buf, 5);
  return buf;
}

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  // Swallow per-stream errors caused by deliberate resets / client aborts.
  stream.on('error', () => {});

  if (path === '/reset-before-headers') {
    // RST_STREAM(CANCEL) before any response HEADERS frame.
    stream.close(NGHTTP2_CANCEL);
    return;
  }
  if (path === '/reset') {
    // Response HEADERS, then RST_STREAM(REFUSED_STREAM) with no END_STREAM.
    // waitForTrailers matters: without it, Node's close(code) first ends the
    // writable side (an empty DATA frame with END_STREAM), the client sees a
    // clean end and ignores the late RST_STREAM (see /reset-naive).
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  if (path === '/reset-naive') {
    // Literal "respond, then close(REFUSED_STREAM)": on the wire this is
    // HEADERS, DATA(END_STREAM), RST_STREAM(7).
    stream.respond(GRPC_HEADERS);
    stream.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  if (path === '/duplex') {
    // Headers immediately, echo every request chunk as soon as it arrives,
    // trailers once the client half-closes.
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.on('data', (chunk) => stream.write(chunk));
    stream.on('end', () => stream.end());
    return;
  }
  if (path.startsWith('/big')) {
    // Large single-message response (size from ?n=), used to check that the
    // client does not drop buffered body bytes when trailers arrive.
    const n = Number(new URL(path, 'http://x').searchParams.get('n') ?? 1 << 20);
    stream.resume();
    stream.on('end', () => {
      stream.respond(GRPC_HEADERS, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(envelope(Buffer.alloc(n, 0x61)));
    });
    return;
  }

  // Default: unary echo. Read whole request envelope, send it back + trailers.
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
});

server.listen(0, '127.0.0.1', () => {
  process.send({ port: server.address().port });
});
// Parent disconnecting IPC (or exiting) is our signal to go away.
process.on('disconnect', () => process.exit(0));
