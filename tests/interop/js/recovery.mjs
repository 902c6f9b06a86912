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

  // A real drop: the socket closes under the SDK (no disconnect() call), the
  // SDK reconnects by itself and recovers what it missed meanwhile.
  const resub2 = waitEvent(subA, 'subscribed', 'alice resubscribes after the socket dropped', { ms: 8000 });
  const reconnecting = waitEvent(a, 'connecting', 'alice notices the dropped socket');
  a._transport.close(); // private SDK field: simulates a network drop
  await reconnecting;
  for (let n = 5; n <= 6; n++) {
    await within(subB.publish(enc({ n })), 5000, `bob publishes n=${n} during the drop`);
  }
  const ctx2 = await resub2;
  checkEqual([ctx2.wasRecovering, ctx2.recovered], [true, true], 'automatic reconnect after a socket drop recovers');
  await until(() => recA.publication.length >= 7, 'alice receives the publications missed during the drop');
  await sleep(300);
  checkEqual(recA.publication.slice(5).map((p) => [p.offset, dec(p.data)]), [[6, { n: 5 }], [7, { n: 6 }]],
    'publications missed during the drop arrive once, in order');
  checkEqual(recA.publication.length, 7, 'no duplicates after the automatic reconnect');

  // Recovery from a position the server cannot honour (unknown epoch):
  // subscribed with wasRecovering: true, recovered: false, no publications.
  const c = newClient({ token: connToken('carol') });
  await connect(c, 'carol');
  const subC = c.newSubscription(channel, { since: { offset: 2, epoch: 'not-the-epoch' } });
  const recC = record(subC, ['publication']);
  const cctx = await subscribe(subC, 'carol with a stale epoch');
  checkEqual([cctx.wasRecovering, cctx.recovered], [true, false], 'recovery with a wrong epoch reports recovered: false');
  checkEqual(cctx.streamPosition && cctx.streamPosition.epoch, epoch, 'failed recovery returns the current epoch');
  checkEqual(cctx.streamPosition && cctx.streamPosition.offset, 7, 'failed recovery returns the current top offset');
  await sleep(300);
  checkEqual(recC.publication.length, 0, 'failed recovery delivers no publications');

  // Recovery of a stream position with offset 0 (subscribed to an empty stream).
  const channel2 = uniq('chat:recovery0-');
  const subA2 = a.newSubscription(channel2);
  const recA2 = record(subA2, ['publication']);
  const e0 = await subscribe(subA2, `alice to the empty ${channel2}`);
  checkEqual(e0.streamPosition && e0.streamPosition.offset, 0, 'empty stream position has offset 0');
  const subB2 = b.newSubscription(channel2);
  await subscribe(subB2, `bob to ${channel2}`);
  const gone2 = waitEvent(a, 'disconnected', 'alice disconnect() again');
  a.disconnect();
  await gone2;
  await within(subB2.publish(enc({ z: 1 })), 5000, 'bob publishes into the empty stream while alice is away');
  const resub3 = waitEvent(subA2, 'subscribed', 'alice resubscribes to the formerly empty stream');
  a.connect();
  const ctx3 = await resub3;
  checkEqual([ctx3.wasRecovering, ctx3.recovered], [true, true], 'recovery from offset 0 succeeds');
  await until(() => recA2.publication.length >= 1, 'alice receives the publication made after offset 0');
  checkEqual([recA2.publication[0].offset, dec(recA2.publication[0].data)], [1, { z: 1 }], 'recovered the first publication of the stream');
});
