// Scenario: private channels ($secret:...) need a subscription token.
//  - with `token` -> subscribed; with `getToken` -> called with the channel, subscribed;
//  - publications flow on the private channel;
//  - without a token -> subscribe error 103;
//  - a token signed with another key -> 103;
//  - a token for another channel -> disconnect 3500 (Centrifugo behaviour).
import {
  run, newClient, connect, subscribe, subscribeRefused, connToken, subToken, jwt, now, check,
  checkEqual, uniq, enc, dec, record, until, within, waitEvent, rejects,
} from './lib.mjs';

await run(async () => {
  const ch1 = uniq('$secret:room-');
  const ch2 = uniq('$secret:room-');
  const a = newClient({ token: connToken('alice') });
  await connect(a, 'alice');

  const s1 = a.newSubscription(ch1, { token: subToken('alice', ch1) });
  const rec1 = record(s1, ['publication']);
  await subscribe(s1, `${ch1} with a subscription token`);
  check(true, 'subscribed to a private channel with a token');

  const seen = [];
  const s2 = a.newSubscription(ch2, {
    getToken: async (ctx) => { seen.push(ctx.channel); return subToken('alice', ctx.channel); },
  });
  await subscribe(s2, `${ch2} with getToken`);
  checkEqual(seen, [ch2], 'subscription getToken was called once with the channel name');

  await within(s1.publish(enc({ secret: 42 })), 5000, 'publish to the private channel');
  await until(() => rec1.publication.length === 1, 'publication on the private channel is delivered');
  checkEqual(dec(rec1.publication[0].data), { secret: 42 }, 'private channel publication data round-trips');
  const hErr = await rejects(s1.history({ limit: 10 }), 'history in secret: (no history_size)');
  checkEqual(hErr.code, 108, 'history in a namespace without history gives 108 (not available)');

  const s3 = a.newSubscription(uniq('$secret:room-'));
  const u3 = await subscribeRefused(s3, 'a private channel without a token');
  checkEqual(u3.code, 103, 'private channel without a token is refused with 103');

  const ch4 = uniq('$secret:room-');
  const s4 = a.newSubscription(ch4, { token: jwt({ sub: 'alice', channel: ch4, exp: now() + 3600 }, 'wrong-key') });
  const u4 = await subscribeRefused(s4, 'a private channel with a badly signed token');
  checkEqual(u4.code, 103, 'badly signed subscription token is refused with 103');
  checkEqual(a.state, 'connected', 'refusals keep the connection');

  // A token for a different channel: Centrifugo disconnects with 3500.
  const b = newClient({ token: connToken('bob') });
  await connect(b, 'bob');
  const ch5 = uniq('$secret:room-');
  const disc = waitEvent(b, 'disconnected', 'bob uses a token for another channel');
  const s5 = b.newSubscription(ch5, { token: subToken('bob', uniq('$secret:other-')) });
  s5.subscribe();
  const d = await disc;
  checkEqual(d.code, 3500, 'subscription token for another channel gives disconnect 3500');
});
