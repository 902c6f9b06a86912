// Scenario: npm `cent.js` (the Node server API client) calls every method it
// supports against the real server over HTTP (per-method endpoints, and the
// legacy newline-separated endpoint through `pipeline`), and what it reports
// matches what centrifuge-js clients see (see python/api_cent.py).
//
// Env: ROTOR_API_URL (http://host:port/api), ROTOR_API_KEY.
import { createRequire } from 'node:module';
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, within, waitEvent,
  rejects, dec,
} from './lib.mjs';

const require = createRequire(import.meta.url);
const { CentClient } = require('cent.js');

const API_URL = process.env.ROTOR_API_URL;
const API_KEY = process.env.ROTOR_API_KEY;

await run(async () => {
  const api = new CentClient({ url: API_URL, apiKey: API_KEY });
  const user = uniq('api-user-');
  const channel = uniq('chat:api-');

  const c = newClient({ token: connToken(user) });
  const ctx = await connect(c, 'SDK client');
  const sub = c.newSubscription(channel);
  await subscribe(sub, channel);

  const gotPub = waitEvent(sub, 'publication', 'subscriber gets the API publication');
  const res = await within(api.publish({ channel, data: { n: 1 } }), 5000, 'publish');
  checkEqual(res.offset, 1, 'publish returns the stream offset');
  check(res.epoch, 'publish returns the stream epoch', res);
  checkEqual(dec((await gotPub).data), { n: 1 }, 'subscriber receives exactly the published data');

  const other = uniq('chat:api-other-');
  const b = await within(api.broadcast({ channels: [channel, other], data: { n: 2 } }), 5000, 'broadcast');
  checkEqual(b.responses.length, 2, 'broadcast answers per channel');
  check(b.responses.every((r) => !r.error && r.result), 'broadcast succeeded everywhere', b);

  const p = await within(api.getPresence({ channel }), 5000, 'presence');
  check(ctx.client in p.presence, 'presence lists the SDK client', p);
  checkEqual(p.presence[ctx.client].user, user, 'presence entry carries the user');
  const s = await within(api.getPresenceStats({ channel }), 5000, 'presence_stats');
  checkEqual([s.num_clients, s.num_users], [1, 1], 'presence_stats counts');

  const h = await within(api.getHistory({ channel, limit: -1 }), 5000, 'history');
  checkEqual(h.publications.map((x) => [x.offset, x.data]), [[1, { n: 1 }], [2, { n: 2 }]],
    'history returns what was published, in order');
  await within(api.removeHistory({ channel }), 5000, 'history_remove');
  const h2 = await within(api.getHistory({ channel, limit: -1 }), 5000, 'history after remove');
  checkEqual([h2.publications.length, h2.offset], [0, 2], 'history_remove keeps the position');

  const ch = await within(api.getChannels({ pattern: 'chat:api-*' }), 5000, 'channels');
  checkEqual(ch.channels[channel]?.num_clients, 1, 'channels lists the channel with its subscriber');

  const info = await within(api.getInfo(), 5000, 'info');
  checkEqual(info.nodes.length, 1, 'info lists one node');
  check(info.nodes[0].num_clients >= 1, 'info counts the SDK client', info);

  const serverChan = uniq('chat:api-server-');
  const subscribed = waitEvent(c, 'subscribed', 'server-side subscribe reaches the client',
    { pred: (x) => x.channel === serverChan });
  await within(api.subscribe({ user, channel: serverChan }), 5000, 'subscribe');
  await subscribed;
  const srvPub = waitEvent(c, 'publication', 'publication on the server-side subscription',
    { pred: (x) => x.channel === serverChan });
  await within(api.publish({ channel: serverChan, data: { srv: true } }), 5000, 'publish (server sub)');
  checkEqual(dec((await srvPub).data), { srv: true }, 'server-side subscription delivers');
  const unsubscribed = waitEvent(c, 'unsubscribed', 'server-side unsubscribe reaches the client',
    { pred: (x) => x.channel === serverChan });
  await within(api.unsubscribe({ user, channel: serverChan }), 5000, 'unsubscribe');
  await unsubscribed;

  // Legacy endpoint: newline-separated commands, newline-separated replies.
  const replies = await within(api.pipeline([
    { method: 'publish', params: { channel, data: { n: 3 } } },
    { method: 'presence_stats', params: { channel } },
    { method: 'history', params: { channel, limit: 0 } },
  ]), 5000, 'pipeline (legacy POST /api)');
  checkEqual(replies.length, 3, 'legacy endpoint answers every command');
  checkEqual(replies[0].offset, 3, 'legacy publish result');
  checkEqual(replies[1].num_clients, 1, 'legacy presence_stats result');
  checkEqual(replies[2].offset, 3, 'legacy history result');

  // cent.js wraps API errors in a CentException without the code: check the
  // rejection, then the body it came from.
  await rejects(api.publish({ channel: 'nope:x', data: {} }), 'unknown namespace');
  const raw = await fetch(`${API_URL}/publish`, {
    method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel: 'nope:x', data: {} }),
  });
  checkEqual([raw.status, await raw.json()], [200, { error: { code: 102, message: 'unknown channel' } }],
    'unknown namespace is API error 102 in a 200 body');

  const wrong = new CentClient({ url: API_URL, apiKey: 'wrong-key' });
  await rejects(wrong.getInfo(), 'a wrong API key is refused');
  check(true, 'a wrong API key is refused');

  const gone = waitEvent(c, 'disconnected', 'API disconnect reaches the client');
  await within(api.disconnect({ user, disconnect: { code: 4501, reason: 'bye' } }), 5000, 'disconnect');
  const d = await gone;
  checkEqual([d.code, d.reason], [4501, 'bye'], 'client sees the API disconnect code and reason');
});
