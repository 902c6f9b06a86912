// Scenario: subscribe + publish from a second client + receive.
// Data must round-trip exactly (JSON value in JSON mode, the exact bytes in
// protobuf mode); the publication carries the publisher's ClientInfo and an offset.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, record, until,
  sleep, PROTOBUF, within,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:pubsub-');
  const a = newClient({ token: connToken('alice', { info: { name: 'Alice' } }) });
  const b = newClient({ token: connToken('bob', { info: { name: 'Bob' } }) });
  await connect(a, 'alice');
  const bctx = await connect(b, 'bob');

  const subA = a.newSubscription(channel);
  const recA = record(subA, ['publication']);
  await subscribe(subA, `alice to ${channel}`);
  const subB = b.newSubscription(channel);
  const recB = record(subB, ['publication']);
  await subscribe(subB, `bob to ${channel}`);

  const payloads = [
    { text: 'hello', n: 1 },
    { nested: { list: [1, 2.5, -3, true, false, null, 'x'], empty: {}, emptyList: [] }, unicode: 'héllo wörld ✓ 日本語 😀', quote: "\"'\\/\n\t" },
    'a plain string',
    12345,
    [1, 'two', { three: 3 }],
  ];
  for (const p of payloads) {
    await within(subB.publish(enc(p)), 5000, `bob publishes ${JSON.stringify(p)}`);
  }
  check(true, `bob published ${payloads.length} messages (publish replies received)`);

  await until(() => recA.publication.length >= payloads.length,
    `alice receives ${payloads.length} publications (got ${recA.publication.length})`);
  checkEqual(recA.publication.map((p) => dec(p.data)), payloads, 'alice receives every payload exactly, in order');
  if (PROTOBUF) {
    const raw = recA.publication[1].data;
    checkEqual(Buffer.from(raw).toString('utf8'), JSON.stringify(payloads[1]), 'protobuf payload bytes are identical to the published bytes');
  }
  const first = recA.publication[0];
  check(first.info && first.info.user === 'bob', 'publication info.user is the publisher', first.info);
  checkEqual(first.info.client, bctx.client, 'publication info.client is the publisher client id');
  checkEqual(first.channel, channel, 'publication context carries the channel');
  const offsets = recA.publication.map((p) => p.offset);
  check(offsets.every((o, i) => typeof o === 'number' && o > 0 && (i === 0 || o === offsets[i - 1] + 1)),
    'publications carry consecutive offsets (history is on in chat:)', offsets);

  await until(() => recB.publication.length >= payloads.length, 'publisher also receives its own publications');
  checkEqual(recB.publication.map((p) => dec(p.data)), payloads, 'publisher receives its own publications exactly');

  await sleep(300);
  checkEqual(recA.publication.length, payloads.length, 'no duplicate or extra publications');
});
