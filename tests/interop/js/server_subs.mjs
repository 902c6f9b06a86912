// Scenario: server-side subscriptions from the connection token's `channels`
// claim. The SDK exposes them at client level (no Subscription object):
//  - `subscribed` (client event) for the channel, recoverable (chat: has force_recovery);
//  - publications and join/leave arrive as client-level events;
//  - after disconnect() + connect() the SDK sends the position in
//    ConnectRequest.subs and the server recovers the missed publications.
import {
  run, newClient, connect, subscribe, jwt, now, connToken, check, checkEqual, uniq, enc, dec,
  record, until, sleep, within, waitEvent,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:server-');
  const a = newClient({ token: jwt({ sub: 'alice', exp: now() + 3600, channels: [channel] }) });
  const recA = record(a, ['subscribed', 'publication', 'join', 'leave', 'unsubscribed']);
  const firstSub = waitEvent(a, 'subscribed', 'server-side subscription from the token', { pred: (c) => c.channel === channel });
  await connect(a, 'alice with a channels claim');
  const s1 = await firstSub;
  checkEqual(s1.channel, channel, 'client-level subscribed event for the token channel');
  checkEqual(s1.recoverable, true, 'server-side subscription is recoverable (force_recovery)');
  check(s1.streamPosition && s1.streamPosition.epoch, 'server-side subscription has a stream position', s1.streamPosition);

  const b = newClient({ token: connToken('bob') });
  const bctx = await connect(b, 'bob');
  const subB = b.newSubscription(channel);
  await subscribe(subB, `bob to ${channel}`);
  await until(() => recA.join.some((j) => j.info && j.info.client === bctx.client), 'alice gets a client-level join for bob');
  check(true, 'join arrives on the server-side subscription');

  await within(subB.publish(enc({ n: 1 })), 5000, 'bob publishes n=1');
  await until(() => recA.publication.length === 1, 'alice receives a client-level publication');
  checkEqual([recA.publication[0].channel, dec(recA.publication[0].data), recA.publication[0].offset], [channel, { n: 1 }, 1],
    'client-level publication carries channel, data and offset');

  const gone = waitEvent(a, 'disconnected', 'alice disconnect()');
  a.disconnect();
  await gone;
  await within(subB.publish(enc({ n: 2 })), 5000, 'bob publishes n=2 while alice is away');
  await within(subB.publish(enc({ n: 3 })), 5000, 'bob publishes n=3 while alice is away');
  const again = waitEvent(a, 'subscribed', 'server-side subscription after reconnect', { pred: (c) => c.channel === channel });
  a.connect();
  const s2 = await again;
  checkEqual([s2.wasRecovering, s2.recovered], [true, true], 'server-side subscription recovers on reconnect (ConnectRequest.subs)');
  await until(() => recA.publication.length >= 3, 'alice receives the 2 missed publications');
  await sleep(300);
  checkEqual(recA.publication.slice(1).map((p) => [p.offset, dec(p.data)]), [[2, { n: 2 }], [3, { n: 3 }]],
    'missed publications on the server-side subscription arrive once, in order');
});
