// Scenario: recovery after a dropped connection.
// Alice is subscribed to a recoverable chat: channel (force_recovery) and has
// seen one publication. She disconnects; Bob publishes 3 messages; Alice
// connects again. Her subscription must emit `subscribed` with
// wasRecovering: true, recovered: true, and she must receive exactly those 3
// publications, in order, without duplicates.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, record, until,
  sleep, within, waitEvent,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:recovery-');
  const a = newClient({ token: connToken('alice') });
  const b = newClient({ token: connToken('bob') });
  await connect(a, 'alice');
  await connect(b, 'bob');

  const subA = a.newSubscription(channel);
  const recA = record(subA, ['publication', 'subscribed']);
  const first = await subscribe(subA, `alice to ${channel}`);
  check(first.recoverable === true, 'subscription is recoverable (force_recovery)', first);
  checkEqual(first.wasRecovering, false, 'first subscribe is not recovering');
  check(first.streamPosition && typeof first.streamPosition.epoch === 'string' && first.streamPosition.epoch.length > 0,
    'first subscribe returns a stream position with an epoch', first.streamPosition);
  const epoch = first.streamPosition.epoch;

  const subB = b.newSubscription(channel);
  await subscribe(subB, `bob to ${channel}`);
  await within(subB.publish(enc({ n: 0 })), 5000, 'bob publishes n=0');
  await until(() => recA.publication.length === 1, 'alice receives the publication before the drop');
  checkEqual(recA.publication[0].offset, 1, 'publication before the drop has offset 1');

  const gone = waitEvent(a, 'disconnected', 'alice disconnect()');
  a.disconnect();
  await gone;
  checkEqual(subA.state, 'subscribing', 'alice subscription waits in subscribing state while disconnected');

  for (let n = 1; n <= 3; n++) {
    await within(subB.publish(enc({ n })), 5000, `bob publishes n=${n} while alice is away`);
  }
  check(true, 'bob published 3 messages while alice was disconnected');

  const resub = waitEvent(subA, 'subscribed', 'alice resubscribes after connect()');
  a.connect();
  const ctx = await resub;
  checkEqual(ctx.wasRecovering, true, 'resubscribe reports wasRecovering: true');
  checkEqual(ctx.recovered, true, 'resubscribe reports recovered: true');
  check(ctx.streamPosition && ctx.streamPosition.epoch === epoch, 'epoch is unchanged after recovery', ctx.streamPosition);

  await until(() => recA.publication.length >= 4, `alice receives the 3 missed publications (got ${recA.publication.length - 1})`);
  await sleep(500);
  const missed = recA.publication.slice(1);
  checkEqual(missed.map((p) => dec(p.data)), [{ n: 1 }, { n: 2 }, { n: 3 }], 'alice receives exactly the 3 missed publications, in order');
  checkEqual(missed.map((p) => p.offset), [2, 3, 4], 'recovered publications carry offsets 2, 3, 4');
  checkEqual(recA.publication.length, 4, 'no duplicates after recovery');

  // Live flow continues after recovery.
  await within(subB.publish(enc({ n: 4 })), 5000, 'bob publishes n=4 after recovery');
  await until(() => recA.publication.length >= 5, 'alice receives a live publication after recovery');
  checkEqual(dec(recA.publication[4].data), { n: 4 }, 'live publication after recovery has the right data');
  checkEqual(recA.publication[4].offset, 5, 'live publication after recovery continues at offset 5');
});
