// Scenario: history. Publications come back with increasing offsets and an
// epoch; limit, since and reverse work as in Centrifugo.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, within,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:history-');
  const a = newClient({ token: connToken('alice') });
  await connect(a, 'alice');
  const sub = a.newSubscription(channel);
  await subscribe(sub, channel);

  const empty = await within(sub.history({ limit: 10 }), 5000, 'history of an empty channel');
  checkEqual(empty.publications.length, 0, 'history of a fresh channel is empty');

  const N = 5;
  for (let i = 1; i <= N; i++) {
    await within(sub.publish(enc({ i })), 5000, `publish #${i}`);
  }

  const h = await within(sub.history({ limit: 10 }), 5000, 'history({limit: 10})');
  checkEqual(h.publications.length, N, `history({limit: 10}) returns all ${N} publications`);
  checkEqual(h.publications.map((p) => dec(p.data)), [1, 2, 3, 4, 5].map((i) => ({ i })), 'history returns the data in publish order');
  const offsets = h.publications.map((p) => p.offset);
  check(offsets.every((o, i) => o > 0 && (i === 0 || o > offsets[i - 1])), 'history offsets are increasing', offsets);
  checkEqual(offsets, [1, 2, 3, 4, 5], 'offsets of a new stream are 1..5');
  check(typeof h.epoch === 'string' && h.epoch.length > 0, 'history result carries an epoch', h.epoch);
  checkEqual(h.offset, offsets[offsets.length - 1], 'history result offset is the stream top');
  check(h.publications[0].info && h.publications[0].info.user === 'alice', 'history publications keep publisher info', h.publications[0].info);

  const h2 = await within(sub.history({ limit: 2 }), 5000, 'history({limit: 2})');
  checkEqual(h2.publications.map((p) => p.offset), [1, 2], 'limit 2 returns the two oldest');

  const h0 = await within(sub.history({ limit: 0 }), 5000, 'history({limit: 0})');
  checkEqual(h0.publications.length, 0, 'limit 0 returns no publications');
  checkEqual([h0.offset, h0.epoch], [5, h.epoch], 'limit 0 still returns the stream position');

  const hr = await within(sub.history({ limit: 2, reverse: true }), 5000, 'history({limit: 2, reverse: true})');
  checkEqual(hr.publications.map((p) => p.offset), [5, 4], 'reverse with limit 2 returns the two newest, newest first');

  const hs = await within(sub.history({ limit: 10, since: { offset: 3, epoch: h.epoch } }), 5000, 'history since offset 3');
  checkEqual(hs.publications.map((p) => p.offset), [4, 5], 'since {offset: 3} returns offsets 4 and 5');
  checkEqual(hs.publications.map((p) => dec(p.data)), [{ i: 4 }, { i: 5 }], 'since returns the right data');
});
