// Scenario: subscribe + publish from a second client + receive.
// Data must round-trip exactly (JSON value in JSON mode, the exact bytes in
// protobuf mode); the publication carries the publisher's ClientInfo and an offset.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, enc, dec, tryDec, record, until,
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

  // Mixed encodings on one channel: a client of the other encoding gets the
  // same payloads (JSON text as bytes in protobuf, bytes of JSON text as JSON).
  const other = PROTOBUF ? 'json' : 'protobuf';
  const x = newClient({ token: connToken('xavier') }, { otherEncoding: true });
  await connect(x, `xavier (${other})`);
  const subX = x.newSubscription(channel);
  const recX = record(subX, ['publication']);
  await subscribe(subX, `xavier (${other}) to ${channel}`);
  const mixed = { mixed: ['encodings', 1, true, null], u: 'ü✓' };
  await within(subB.publish(enc(mixed)), 5000, `bob (${PROTOBUF ? 'protobuf' : 'json'}) publishes for a ${other} subscriber`);
  await until(() => recX.publication.length === 1, `${other} subscriber receives the publication`);
  const got = PROTOBUF ? recX.publication[0].data : JSON.parse(Buffer.from(recX.publication[0].data).toString('utf8'));
  checkEqual(got, mixed, `${other} subscriber gets the same payload`);
  const fromX = { from: other };
  await within(subX.publish(PROTOBUF ? fromX : new TextEncoder().encode(JSON.stringify(fromX))), 5000, `xavier (${other}) publishes`);
  await until(() => recA.publication.length === payloads.length + 2, `alice receives the ${other} publication`);
  checkEqual(dec(recA.publication[payloads.length + 1].data), fromX, `a publication from a ${other} client arrives intact`);
  subX.unsubscribe();
  recA.publication.splice(payloads.length, 2);

  // Several commands in one WebSocket frame or one emulation request (JSON:
  // newline-separated, protobuf: varint-length-prefixed) via the SDK's
  // batching mode.
  const n0 = recA.publication.length;
  b.startBatching();
  const batch = [1, 2, 3].map((k) => subB.publish(enc({ batch: k })));
  b.stopBatching();
  await within(Promise.all(batch), 5000, 'three publishes sent in one frame');
  await until(() => recA.publication.length === n0 + 3, 'alice receives the 3 batched publications');
  checkEqual(recA.publication.slice(n0).map((p) => dec(p.data)), [{ batch: 1 }, { batch: 2 }, { batch: 3 }],
    'batched publishes are all applied, in order');
  recA.publication.splice(n0, 3);

  // A bigger payload (32 KiB of text) round-trips too.
  const big = { blob: 'x'.repeat(32 * 1024) };
  await within(subB.publish(enc(big)), 5000, 'bob publishes a 32 KiB payload');
  await until(() => recA.publication.length === payloads.length + 1, 'alice receives the 32 KiB publication');
  checkEqual(dec(recA.publication[payloads.length].data), big, '32 KiB payload round-trips exactly');

  if (PROTOBUF) {
    // Protobuf carries arbitrary bytes, not only JSON text.
    const raw = new Uint8Array([0, 255, 1, 128, 10, 13, 0]);
    await within(subB.publish(raw), 5000, 'bob publishes non-UTF-8 bytes');
    await until(() => recA.publication.length === payloads.length + 2, 'alice receives the binary publication');
    checkEqual(Array.from(recA.publication[payloads.length + 1].data), Array.from(raw), 'binary payload round-trips byte for byte');
  }

  // After unsubscribe, nothing more is delivered to alice.
  const before = recA.publication.length;
  subA.unsubscribe();
  await within(subB.publish(enc({ after: 'unsubscribe' })), 5000, 'bob publishes after alice unsubscribed');
  await until(() => recB.publication.some((p) => { const d = tryDec(p.data); return d && d.after === 'unsubscribe'; }), 'bob receives his last publication');
  await sleep(300);
  checkEqual(recA.publication.length, before, 'no publication after unsubscribe');
});
