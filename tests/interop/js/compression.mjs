// Scenario: WebSocket permessage-deflate (server started with
// websocket.compression on and compression_min_size 0).
//  - npm `ws` offers permessage-deflate by default: the server accepts it
//    (`ws.extensions` names it) on the SDK's own socket;
//  - connect, subscribe and publish work over the compressed connection,
//    small payloads and one large enough (> 1 KiB) that `ws` compresses it
//    on the way in too;
//  - a plain `ws` socket with perMessageDeflate off still connects, without
//    the extension, and speaks the raw JSON protocol.
import WebSocket from 'ws';
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, record, until,
  within, WS_URL, PROTOBUF,
} from './lib.mjs';

const sockets = [];
/** The `ws` class, remembering every socket the SDK opens. */
class Recorded extends WebSocket {
  constructor(...args) {
    super(...args);
    sockets.push(this);
  }
}

await run(async () => {
  const channel = uniq('chat:deflate-');
  const a = newClient({ token: connToken('alice'), websocket: Recorded });
  const b = newClient({ token: connToken('bob'), websocket: Recorded });
  await connect(a, 'alice');
  await connect(b, 'bob');
  checkEqual(sockets.length, 2, 'the SDK opened its sockets through the recorded class');
  for (const s of sockets) {
    check(s.extensions.includes('permessage-deflate'), 'permessage-deflate negotiated', s.extensions);
  }

  const subA = a.newSubscription(channel);
  const recA = record(subA, ['publication']);
  await subscribe(subA, `alice to ${channel}`);
  const subB = b.newSubscription(channel);
  await subscribe(subB, `bob to ${channel}`);

  const payloads = [
    { text: 'hello', n: 1 },
    { unicode: 'héllo wörld ✓ 日本語 😀' },
    { blob: 'compress me '.repeat(2000) },
  ];
  for (const p of payloads) {
    await within(subB.publish(enc(p)), 5000, `bob publishes ${JSON.stringify(p).length} bytes`);
  }
  await until(() => recA.publication.length >= payloads.length,
    `alice receives ${payloads.length} publications (got ${recA.publication.length})`);
  checkEqual(recA.publication.map((p) => dec(p.data)), payloads,
    'every payload round-trips exactly over the compressed connection');

  if (!PROTOBUF) {
    // A client that does not offer the extension.
    const plain = new WebSocket(WS_URL, { perMessageDeflate: false });
    await within(new Promise((res, rej) => { plain.once('open', res); plain.once('error', rej); }),
      5000, 'plain socket opens');
    checkEqual(plain.extensions, '', 'no extension without an offer');
    const reply = within(new Promise((res) => plain.once('message', (m) => res(JSON.parse(m.toString())))),
      5000, 'connect reply on the plain socket');
    plain.send(JSON.stringify({ id: 1, connect: { token: connToken('carol') } }));
    const r = await reply;
    check(r.id === 1 && r.connect && r.connect.client, 'raw JSON connect works without compression', r);
    plain.close();
  }
});
