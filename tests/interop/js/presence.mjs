// Scenario: presence and presence stats on a chat: channel (presence on,
// allow_presence_for_subscriber). Connection info from the token appears in
// presence; two connections of the same user count as one user.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, within, waitEvent, dec,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:presence-');
  const a = newClient({ token: connToken('alice', { info: { name: 'Alice' } }) });
  const b = newClient({ token: connToken('bob', { info: { name: 'Bob' } }) });
  const a2 = newClient({ token: connToken('alice', { info: { name: 'Alice 2' } }) });
  const actx = await connect(a, 'alice');
  const bctx = await connect(b, 'bob');
  const a2ctx = await connect(a2, 'alice (second connection)');

  const subA = a.newSubscription(channel);
  await subscribe(subA, 'alice');
  const subB = b.newSubscription(channel);
  await subscribe(subB, 'bob');

  const p = await within(subA.presence(), 5000, 'presence()');
  const ids = Object.keys(p.clients).sort();
  checkEqual(ids, [actx.client, bctx.client].sort(), 'presence lists both subscribed client ids');
  checkEqual(p.clients[actx.client].user, 'alice', 'presence entry for alice has user alice');
  checkEqual(p.clients[actx.client].client, actx.client, 'presence entry carries the client id');
  checkEqual(p.clients[bctx.client].user, 'bob', 'presence entry for bob has user bob');
  checkEqual(dec(p.clients[bctx.client].connInfo), { name: 'Bob' }, 'presence entry carries connInfo from the token info claim');

  const s = await within(subA.presenceStats(), 5000, 'presenceStats()');
  checkEqual([s.numClients, s.numUsers], [2, 2], 'presenceStats: 2 clients, 2 users');

  const subA2 = a2.newSubscription(channel);
  await subscribe(subA2, 'alice (second connection)');
  const s2 = await within(subB.presenceStats(), 5000, 'presenceStats() after a second alice connection');
  checkEqual([s2.numClients, s2.numUsers], [3, 2], 'presenceStats: 3 clients, 2 users (same user twice)');
  const pB = await within(subB.presence(), 5000, 'presence() from bob');
  check(a2ctx.client in pB.clients, 'second alice connection appears in presence', Object.keys(pB.clients));

  const unsub = waitEvent(subA2, 'unsubscribed', 'alice 2 unsubscribes');
  subA2.unsubscribe();
  await unsub;
  let s3;
  const start = Date.now();
  // The unsubscribe is asynchronous on the server: poll briefly.
  for (;;) {
    s3 = await within(subB.presenceStats(), 5000, 'presenceStats() after unsubscribe');
    if (s3.numClients === 2 || Date.now() - start > 3000) break;
  }
  checkEqual([s3.numClients, s3.numUsers], [2, 2], 'presence drops an unsubscribed client');
});
