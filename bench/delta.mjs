// Bytes on the wire with fossil delta versus without (BENCHMARKS.md, issue 16).
//
//   node bench/delta.mjs [json|protobuf] [publications]
//
// Needs a running server on 127.0.0.1:8000 with bench/rotor-delta.json and the
// interop npm packages (tests/interop/node_modules: run the test command once).
// Two official-SDK clients subscribe to one `delta:` channel, one with
// delta: 'fossil' and one without; the HTTP API publishes N versions of a
// ~2 KB JSON document, each with a small change. Every WebSocket frame the
// two clients receive is counted; the publication frames' bytes are
// compared. Each client also checks it decoded every document exactly.
import { createRequire } from 'node:module';
import { createHmac } from 'node:crypto';

const require = createRequire(new URL('../tests/interop/package.json', import.meta.url));
const encoding = process.argv[2] || 'json';
const n = Number(process.argv[3] || 200);
const { Centrifuge } = require(encoding === 'protobuf' ? 'centrifuge/build/protobuf' : 'centrifuge');
const WebSocket = require('ws');

const SECRET = 'rotor-bench-delta-secret-0123456789';
const API_KEY = 'rotor-bench-delta-api-key';
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
function token(sub) {
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function doc(i) {
  const rows = [];
  for (let r = 0; r < 30; r++) rows.push({ id: r, name: `row number ${r}`, score: r * 7, tags: ['a', 'b'] });
  return { version: i, title: 'a document that changes a little', rows, counter: i, note: `edit ${i}` };
}

function counting() {
  const counter = { bytes: 0, frames: 0 };
  class CountingSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.on('message', (data) => { counter.bytes += data.length ?? data.byteLength; counter.frames++; });
    }
  }
  return { counter, CountingSocket };
}

async function client(name, opts) {
  const { counter, CountingSocket } = counting();
  const c = new Centrifuge('ws://127.0.0.1:8000/connection/websocket', { websocket: CountingSocket, token: token(name) });
  const got = [];
  const sub = c.newSubscription(channel, opts);
  sub.on('publication', (ctx) => got.push(ctx.data));
  const subscribed = new Promise((resolve) => sub.on('subscribed', resolve));
  c.connect();
  sub.subscribe();
  await subscribed;
  return { c, sub, got, counter };
}

const channel = `delta:bench-${Date.now()}`;
const full = await client('full', {});
const delta = await client('delta', { delta: 'fossil' });
const before = [full.counter.bytes, delta.counter.bytes];
for (let i = 1; i <= n; i++) {
  const res = await fetch('http://127.0.0.1:8000/api/publish', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
    body: JSON.stringify({ channel, data: doc(i) }),
  });
  if (!res.ok) throw new Error(`publish ${i}: ${res.status}`);
}
const deadline = Date.now() + 10000;
while ((full.got.length < n || delta.got.length < n) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
}
const decode = (d) => (d instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(d)) : d);
for (const [who, c] of [['full', full], ['delta', delta]]) {
  if (c.got.length !== n) throw new Error(`${who}: got ${c.got.length} of ${n}`);
  c.got.forEach((d, i) => {
    if (JSON.stringify(decode(d)) !== JSON.stringify(doc(i + 1))) throw new Error(`${who}: publication ${i + 1} differs`);
  });
}
const fullBytes = full.counter.bytes - before[0];
const deltaBytes = delta.counter.bytes - before[1];
const stats = delta.sub.deltaStats();
console.log(JSON.stringify({
  encoding, publications: n, doc_bytes: JSON.stringify(doc(1)).length,
  full_bytes_per_pub: +(fullBytes / n).toFixed(1), delta_bytes_per_pub: +(deltaBytes / n).toFixed(1),
  ratio: +(deltaBytes / fullBytes).toFixed(3), delta_payloads: stats.numDeltaPayloads, full_payloads: stats.numFullPayloads,
}));
full.c.disconnect();
delta.c.disconnect();
process.exit(0);
