// Scenario: connection token refresh before expiry.
// The connection token expires in ~3 s; getToken returns a fresh one. The SDK
// must call getToken (refresh command) and stay connected past the original
// expiry (the suite config sets client.expired_close_delay to 1s, so a missing
// refresh would be punished with disconnect 3005 within ~4 s). The same for a
// subscription token on a private channel (sub_refresh).
import {
  run, newClient, connect, subscribe, connToken, subToken, jwt, now, check, checkEqual, uniq, record, sleep,
  within, enc,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:refresh-');
  const exp = now() + 3;
  let calls = 0;
  const a = newClient({
    token: jwt({ sub: 'alice', exp }),
    getToken: async () => { calls++; return connToken('alice', { ttl: 3600 }); },
  });
  const rec = record(a, ['connected', 'connecting', 'disconnected', 'error']);
  const ctx = await connect(a, 'alice with a short-lived token');
  const sub = a.newSubscription(channel);
  await subscribe(sub, channel);

  // A private channel whose subscription token also expires in ~3 s.
  const secret = uniq('$secret:refresh-');
  let subCalls = 0;
  const sSub = a.newSubscription(secret, {
    token: subToken('alice', secret, { ttl: 3 }),
    getToken: async (c) => { subCalls++; return subToken('alice', c.channel, { ttl: 3600 }); },
  });
  const sRec = record(sSub, ['subscribing', 'unsubscribed', 'error']);
  await subscribe(sSub, `${secret} with a short-lived subscription token`);

  // Wait until well past the original expiry (+ the 1s close delay + slack).
  const waitMs = Math.max(0, (exp - now()) * 1000) + 3500;
  await sleep(waitMs);

  check(calls >= 1, 'getToken was called to refresh the connection token', calls);
  checkEqual(a.state, 'connected', 'client is still connected past the original token expiry');
  checkEqual(rec.disconnected.length, 0, 'no disconnected event');
  checkEqual(rec.connecting.length, 1, 'no reconnect happened (only the initial connecting)');
  checkEqual(rec.connected.length, 1, 'connected only once');
  checkEqual(rec.error.length, 0, 'no client errors (refresh succeeded)');
  await within(sub.publish(enc({ after: 'refresh' })), 5000, 'publish after the original expiry');
  check(true, 'commands still work after the original expiry');

  check(subCalls >= 1, 'subscription getToken was called to refresh the subscription token', subCalls);
  checkEqual(sSub.state, 'subscribed', 'private subscription is still subscribed past its token expiry');
  checkEqual(sRec.subscribing.length, 1, 'private subscription never resubscribed');
  checkEqual([sRec.unsubscribed.length, sRec.error.length], [0, 0], 'no unsubscribe or subscription error');
  void ctx;
});
