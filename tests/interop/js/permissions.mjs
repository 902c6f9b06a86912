// Scenario: permission and namespace errors.
//  - closed: namespace (no allow_* options) -> subscribe error 103;
//  - unknown namespace nope:x -> 102;
//  - publish / presence on chat: without being subscribed -> 103
//    (chat: only allows them for subscribers).
import {
  run, newClient, connect, subscribeRefused, connToken, checkEqual, uniq, enc, rejects,
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

  checkEqual(a.state, 'connected', 'errors keep the connection open');
});
