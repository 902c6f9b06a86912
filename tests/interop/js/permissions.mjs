// Scenario: permission and namespace errors.
//  - closed: namespace (no allow_* options) -> subscribe error 103;
//  - unknown namespace nope:x -> 102;
//  - publish / presence on chat: without being subscribed -> 103
//    (chat: only allows them for subscribers);
//  - channel name over 255 bytes -> 107; 129th subscription -> 106.
import {
  run, newClient, connect, subscribeRefused, connToken, check, checkEqual, uniq, enc, rejects, until,
} from './lib.mjs';

await run(async () => {
  const a = newClient({ token: connToken('alice') });
  await connect(a, 'alice');

  const closed = a.newSubscription(uniq('closed:'));
  const u1 = await subscribeRefused(closed, 'closed: namespace');
  checkEqual(u1.code, 103, 'subscribe in a namespace without allow_* options gives 103');

  const unknown = a.newSubscription('nope:x');
  const u2 = await subscribeRefused(unknown, 'unknown namespace nope:x');
  checkEqual(u2.code, 102, 'subscribe in an unknown namespace gives 102');

  const ch = uniq('chat:perm-');
  const e1 = await rejects(a.publish(ch, enc({ x: 1 })), 'publish to chat: without subscribing');
  checkEqual(e1.code, 103, 'publish without a subscription gives 103 (allow_publish_for_subscriber only)');

  const e2 = await rejects(a.presence(ch), 'presence on chat: without subscribing');
  checkEqual(e2.code, 103, 'presence without a subscription gives 103 (allow_presence_for_subscriber only)');

  const e3 = await rejects(a.publish('nope:x', enc({ x: 1 })), 'publish to an unknown namespace');
  checkEqual(e3.code, 102, 'publish to an unknown namespace gives 102');

  const long = a.newSubscription(`chat:${'x'.repeat(260)}`);
  const u3 = await subscribeRefused(long, 'a channel name longer than 255 bytes');
  checkEqual(u3.code, 107, 'channel name over channel.max_length (255) gives 107');

  // client.channel_limit defaults to 128 subscriptions per connection.
  const many = newClient({ token: connToken('manny') });
  await connect(many, 'manny');
  const prefix = uniq('chat:many-');
  for (let i = 0; i < 128; i++) {
    many.newSubscription(`${prefix}-${i}`).subscribe();
  }
  await until(() => Object.values(many.subscriptions()).every((s) => s.state === 'subscribed'),
    '128 subscriptions on one connection', 10000);
  check(true, '128 subscriptions on one connection succeed');
  const over = many.newSubscription(`${prefix}-128`);
  const u4 = await subscribeRefused(over, 'the 129th subscription');
  checkEqual(u4.code, 106, 'subscription over client.channel_limit (128) gives 106');

  checkEqual(a.state, 'connected', 'errors keep the connection open');
});
