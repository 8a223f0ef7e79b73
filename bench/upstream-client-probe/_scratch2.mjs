import http2 from 'node:http2';
const H = { ':status': 200, 'content-type': 'application/grpc' };
const server = http2.createServer();
server.on('stream', (st, h) => {
  st.on('error', () => {});
  const p = h[':path'];
  if (p === '/a') { st.respond(H); st.close(7); }
  if (p === '/b') { st.respond(H, { waitForTrailers: true }); st.close(7); }
  if (p === '/c') { st.respond(H); st.close(7); st.destroy(); }
  if (p === '/d') { st.respond(H); setImmediate(() => { st.rstCode; st.close(7); }); }
  if (p === '/e') { st.respond(H, { waitForTrailers: true }); st.write(Buffer.alloc(5)); setTimeout(() => st.close(7), 10); }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const s = http2.connect(`http://127.0.0.1:${server.address().port}`);
for (const path of ['/a', '/b', '/c', '/d', '/e']) {
  await new Promise((done) => {
    const st = s.request({ ':method': 'POST', ':path': path });
    const evs = [];
    for (const ev of ['response', 'trailers', 'end', 'error', 'close'])
      st.on(ev, (a) => { evs.push(ev + (ev === 'error' ? `(${a.code}: ${a.message})` : '')); if (ev === 'close') { console.log(path, evs.join(' '), 'rstCode', st.rstCode); done(); } });
    st.on('data', () => {});
    st.end(Buffer.alloc(10));
  });
}
s.close(); server.close();
