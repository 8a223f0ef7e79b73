import { fork } from 'node:child_process';
import { H2CClient } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
const child = fork(new URL('./server.mjs', import.meta.url));
const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
const client = new H2CClient(`http://127.0.0.1:${port}`);
const H = { 'content-type': 'application/grpc', te: 'trailers' };
const counts = {};
for (let i = 0; i < 30; i++) {
  const res = await client.request({ path: '/big?n=1048576', method: 'POST', headers: H, body: Buffer.alloc(1029) });
  let n = 0; for await (const c of res.body) { n += c.length; if (process.env.SLOW) await sleep(1); }
  counts[n] = (counts[n] ?? 0) + 1; if (process.env.V) console.log(i, n);
}
console.log('slow', !!process.env.SLOW, counts);
// duplex
async function* body(sig) { yield Buffer.alloc(1029, 1); await sig; yield Buffer.alloc(1029, 2); }
const dc = {};
for (let i = 0; i < 20; i++) {
  let go; const sig = new Promise((r) => (go = r));
  const r = await Promise.race([(async () => {
    const res = await client.request({ path: '/duplex', method: 'POST', headers: H, body: body(sig) });
    let n = 0; for await (const c of res.body) { n += c.length; go(); } return 'ok ' + n;
  })(), sleep(3000).then(() => { go(); return 'stuck'; })]);
  dc[r] = (dc[r] ?? 0) + 1;
}
console.log('duplex', dc);
await client.destroy(); child.kill();
