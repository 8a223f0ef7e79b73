import { fork } from 'node:child_process';
import http2 from 'node:http2';
const child = fork(new URL('./server.mjs', import.meta.url));
const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
const s = http2.connect(`http://127.0.0.1:${port}`);
for (const path of ['/reset', '/reset-before-headers']) {
  await new Promise((done) => {
    const st = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    for (const ev of ['response', 'trailers', 'end', 'error', 'aborted', 'close', 'frameError'])
      st.on(ev, (a, b) => { console.log(path, ev, ev === 'error' ? a.message : '', 'rstCode', st.rstCode, ev === 'frameError' ? [a, b] : ''); if (ev === 'close') done(); });
    st.on('data', () => {});
    st.end(Buffer.alloc(10));
  });
}
s.close(); child.kill();
