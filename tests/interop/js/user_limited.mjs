// Scenario: user-limited channels (dialog: has allow_user_limited_channels).
// dialog:#alice,bob works for alice and bob, gives 103 for carol.
import {
  run, newClient, connect, subscribe, subscribeRefused, connToken, checkEqual, uniq, enc, dec,
  record, until, within, check,
} from './lib.mjs';

await run(async () => {
  const tag = uniq('');
  const alice = `alice${tag}`;
  const bob = `bob${tag}`;
  const carol = `carol${tag}`;
  const channel = `dialog:#${alice},${bob}`;

  const a = newClient({ token: connToken(alice) });
  const b = newClient({ token: connToken(bob) });
  const c = newClient({ token: connToken(carol) });
  await connect(a, alice);
  await connect(b, bob);
  await connect(c, carol);

  const sa = a.newSubscription(channel);
  await subscribe(sa, `${alice} to ${channel}`);
  check(true, 'first listed user subscribes to the user-limited channel');
  const sb = b.newSubscription(channel);
  const recB = record(sb, ['publication']);
  await subscribe(sb, `${bob} to ${channel}`);
  check(true, 'second listed user subscribes to the user-limited channel');

  await within(sa.publish(enc({ hi: bob })), 5000, 'alice publishes in the dialog');
  await until(() => recB.publication.length === 1, 'bob receives the dialog message');
  checkEqual(dec(recB.publication[0].data), { hi: bob }, 'dialog message round-trips');

  const sc = c.newSubscription(channel);
  const u = await subscribeRefused(sc, `${carol} to ${channel}`);
  checkEqual(u.code, 103, 'a user not listed in the channel is refused with 103');
  checkEqual(c.state, 'connected', 'the refused user stays connected');
});
