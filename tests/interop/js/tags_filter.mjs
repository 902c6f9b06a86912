// Scenario: publication filtering by tags.
// Alice subscribes to a `tags:` channel (allow_tags_filter, force_recovery)
// with tagsFilter "ticker in [AAPL, MSFT] and price > 100"; Carol subscribes
// without a filter. The server API publishes 6 publications with tags. Alice
// gets exactly the matching ones, in order, with their offsets; Carol gets
// all 6. After a disconnect, recovery sends Alice only the matching missed
// publications. A malformed filter is refused with 107 and the connection
// stays up; a channel without allow_tags_filter refuses any filter.
import {
  run, newClient, connect, subscribe, subscribeRefused, connToken, check, checkEqual, uniq, dec, record,
  until, sleep, waitEvent,
} from './lib.mjs';

const API_URL = process.env.ROTOR_API_URL;
const API_KEY = process.env.ROTOR_API_KEY;

async function publish(channel, n, tags) {
  const res = await fetch(`${API_URL}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
    body: JSON.stringify({ channel, data: { n }, tags }),
  });
  const body = await res.json();
  check(res.ok && body.result !== undefined, `API publish n=${n} with tags ${JSON.stringify(tags)}`, body);
}

const FILTER = {
  op: 'and',
  nodes: [
    { key: 'ticker', cmp: 'in', vals: ['AAPL', 'MSFT'] },
    { key: 'price', cmp: 'gt', val: '100' },
  ],
};
const ROWS = [
  [1, { ticker: 'AAPL', price: '101.5' }, true],
  [2, { ticker: 'AAPL', price: '99.99' }, false],
  [3, { ticker: 'GOOG', price: '150' }, false],
  [4, { ticker: 'MSFT', price: '300' }, true],
  [5, { price: '500' }, false],
  [6, { ticker: 'MSFT', price: '100.0001' }, true],
];

await run(async () => {
  check(API_URL && API_KEY, 'ROTOR_API_URL and ROTOR_API_KEY are set');
  const channel = uniq('tags:quotes-');
  const a = newClient({ token: connToken('alice') });
  const c = newClient({ token: connToken('carol') });
  await connect(a, 'alice');
  await connect(c, 'carol');

  const subA = a.newSubscription(channel, { tagsFilter: FILTER });
  const recA = record(subA, ['publication']);
  await subscribe(subA, `alice to ${channel} with a tags filter`);
  const subC = c.newSubscription(channel);
  const recC = record(subC, ['publication']);
  await subscribe(subC, `carol to ${channel} without a filter`);

  for (const [n, tags] of ROWS) await publish(channel, n, tags);
  await until(() => recC.publication.length >= 6, 'carol receives all 6 publications');
  const want = ROWS.filter((r) => r[2]).map((r) => r[0]);
  await until(() => recA.publication.length >= want.length, 'alice receives the matching publications');
  await sleep(300);
  checkEqual(recA.publication.map((p) => dec(p.data).n), want, 'alice gets exactly the matching publications, in order');
  checkEqual(recA.publication.map((p) => p.offset), want, 'they keep their stream offsets');
  checkEqual(recA.publication[0].tags, ROWS[0][1], 'tags travel with the publication');
  checkEqual(recC.publication.map((p) => dec(p.data).n), [1, 2, 3, 4, 5, 6], 'carol gets everything');

  // Recovery applies the filter too.
  const gone = waitEvent(a, 'disconnected', 'alice disconnect()');
  a.disconnect();
  await gone;
  for (const [n, tags] of ROWS) await publish(channel, n + 10, tags);
  const resub = waitEvent(subA, 'subscribed', 'alice resubscribes after connect()');
  a.connect();
  const ctx = await resub;
  checkEqual([ctx.wasRecovering, ctx.recovered], [true, true], 'alice recovers across filtered publications');
  await until(() => recA.publication.length >= 2 * want.length, 'alice receives the matching missed publications');
  await sleep(300);
  checkEqual(recA.publication.slice(want.length).map((p) => dec(p.data).n), want.map((n) => n + 10),
    'recovery sends only the matching publications');
  await publish(channel, 100, { ticker: 'AAPL', price: '1000' });
  await until(() => recA.publication.length >= 2 * want.length + 1, 'a live matching publication after recovery arrives');

  // A malformed filter (unknown comparison) is refused with 107; the
  // connection stays up.
  const bad = a.newSubscription(uniq('tags:bad-'), { tagsFilter: { key: 'ticker', cmp: 'like', val: 'A' } });
  const refused = await subscribeRefused(bad, 'a malformed filter');
  checkEqual(refused.code, 107, 'a malformed filter is error 107');
  checkEqual(a.state, 'connected', 'the connection stays up after a bad filter');

  // A namespace without allow_tags_filter refuses any filter.
  const closed = a.newSubscription(uniq('chat:nofilter-'), { tagsFilter: { key: 'a', cmp: 'ex' } });
  const refused2 = await subscribeRefused(closed, 'a filter where tags filtering is not allowed');
  checkEqual(refused2.code, 107, 'a filter on a namespace without allow_tags_filter is error 107');
  checkEqual(a.state, 'connected', 'the connection stays up');
});
