// Scenario: fossil delta compression on a stream subscription.
// Alice subscribes to a `delta:` channel (allowed_delta_types: fossil,
// delta_publish, force_recovery) with delta: 'fossil'; Carol subscribes to
// the same channel without delta. Bob publishes a ~2 KB JSON document with a
// small change each time. Alice must decode every publication to the exact
// document, with all but the first arriving as deltas that are much smaller
// than the document; Carol gets the plain documents. After a disconnect,
// recovery continues Alice's chain, and live deltas follow. A delta request
// on a channel that does not allow delta is simply not negotiated.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, record, until,
  sleep, within, waitEvent,
} from './lib.mjs';

function doc(n) {
  const rows = [];
  for (let i = 0; i < 30; i++) rows.push({ id: i, name: `row number ${i}`, score: i * 7, tags: ['a', 'b'] });
  return { version: n, title: 'a document that changes a little', rows, counter: n, note: `edit ${n}` };
}

await run(async () => {
  const channel = uniq('delta:doc-');
  const a = newClient({ token: connToken('alice') });
  const b = newClient({ token: connToken('bob') });
  const c = newClient({ token: connToken('carol') });
  await connect(a, 'alice');
  await connect(b, 'bob');
  await connect(c, 'carol');
  check(JSON.stringify(doc(1)).length > 1800, 'the document is about 2 KB', JSON.stringify(doc(1)).length);

  const subA = a.newSubscription(channel, { delta: 'fossil' });
  const recA = record(subA, ['publication']);
  await subscribe(subA, `alice to ${channel} with delta`);
  const subC = c.newSubscription(channel);
  const recC = record(subC, ['publication']);
  await subscribe(subC, `carol to ${channel} without delta`);
  const subB = b.newSubscription(channel);
  await subscribe(subB, `bob to ${channel}`);

  for (let n = 1; n <= 5; n++) {
    await within(subB.publish(enc(doc(n))), 5000, `bob publishes version ${n}`);
  }
  await until(() => recA.publication.length >= 5 && recC.publication.length >= 5, 'alice and carol receive 5 publications');
  checkEqual(recA.publication.map((p) => dec(p.data)), [1, 2, 3, 4, 5].map(doc), 'alice decodes every delta to the exact document');
  checkEqual(recC.publication.map((p) => dec(p.data)), [1, 2, 3, 4, 5].map(doc), 'carol (no delta) gets the plain documents');
  const stats = subA.deltaStats();
  checkEqual([stats.numFullPayloads, stats.numDeltaPayloads], [1, 4], 'the first publication is full, the next 4 are deltas');
  check(stats.bytesReceived < 0.4 * stats.bytesDecoded,
    `deltas cut the bytes received (${stats.bytesReceived} of ${stats.bytesDecoded})`, stats);

  // Recovery continues the chain.
  const gone = waitEvent(a, 'disconnected', 'alice disconnect()');
  a.disconnect();
  await gone;
  for (let n = 6; n <= 8; n++) {
    await within(subB.publish(enc(doc(n))), 5000, `bob publishes version ${n} while alice is away`);
  }
  const resub = waitEvent(subA, 'subscribed', 'alice resubscribes after connect()');
  a.connect();
  const ctx = await resub;
  checkEqual([ctx.wasRecovering, ctx.recovered], [true, true], 'alice recovers');
  await until(() => recA.publication.length >= 8, 'alice receives the 3 missed publications');
  checkEqual(recA.publication.slice(5).map((p) => [p.offset, dec(p.data)]), [[6, doc(6)], [7, doc(7)], [8, doc(8)]],
    'recovered publications decode to the exact documents, in order');
  await within(subB.publish(enc(doc(9))), 5000, 'bob publishes version 9 after the recovery');
  await until(() => recA.publication.length >= 9, 'alice receives the live publication after recovery');
  checkEqual(dec(recA.publication[8].data), doc(9), 'the live publication after recovery decodes');
  const after = subA.deltaStats();
  check(after.numDeltaPayloads >= 7, 'recovered and live publications after recovery came as deltas', after);
  await sleep(200);
  checkEqual(recA.publication.length, 9, 'no duplicates');

  // A channel that does not allow delta: the request is not negotiated.
  const plain = uniq('chat:nodelta-');
  const subP = a.newSubscription(plain, { delta: 'fossil' });
  const recP = record(subP, ['publication']);
  await subscribe(subP, `alice to ${plain} asking for delta`);
  const subPB = b.newSubscription(plain);
  await subscribe(subPB, `bob to ${plain}`);
  await within(subPB.publish(enc(doc(1))), 5000, 'bob publishes to the channel without delta');
  await until(() => recP.publication.length >= 1, 'alice receives it');
  checkEqual(dec(recP.publication[0].data), doc(1), 'the publication arrives in full');
  checkEqual(subP.deltaStats().numPublications, 0, 'delta was not negotiated there');
});
