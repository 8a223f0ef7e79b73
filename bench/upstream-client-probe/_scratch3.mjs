import { fork } from 'node:child_process';
import { H2CClient } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
const child = fork(new URL('./server.mjs', import.meta.url));
const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
const client = new H2CClient(`http://127.0.0.1:${port}`);
const t0 = performance.now(); const log = (...a) => console.log((performance.now() - t0).toFixed(1), ...a);
async function* body() { log('yield 1'); yield Buffer.alloc(1029, 1); await sleep(1000); log('yield 2'); yield Buffer.alloc(1029, 2); log('gen done'); }
const p = client.request({ path: '/duplex', method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: body() });
p.then(async (res) => { log('headers', res.statusCode); for await (const c of res.body) log('data', c.length); log('end', res.trailers); }, (e) => log('err', e));
await sleep(4000); log('giving up'); await client.destroy(); child.kill();
