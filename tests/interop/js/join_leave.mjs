// Scenario: join/leave events (chat: has join_leave + force_push_join_leave).
// Alice is subscribed; Bob subscribes -> Alice gets a join with Bob's
// ClientInfo; Bob unsubscribes -> Alice gets a leave; Carol connects,
// subscribes and disconnects -> join then leave.
import {
  run, newClient, connect, subscribe, connToken, check, checkEqual, uniq, waitEvent, record, sleep, dec,
} from './lib.mjs';

await run(async () => {
  const channel = uniq('chat:joinleave-');
  const a = newClient({ token: connToken('alice') });
  const b = newClient({ token: connToken('bob', { info: { name: 'Bob' } }) });
  const actx = await connect(a, 'alice');
  const bctx = await connect(b, 'bob');

  const subA = a.newSubscription(channel);
  const recA = record(subA, ['join', 'leave']);
  await subscribe(subA, 'alice');

  const joined = waitEvent(subA, 'join', 'bob joins', { pred: (c) => c.info && c.info.client === bctx.client });
  const subB = b.newSubscription(channel);
  await subscribe(subB, 'bob');
  const j = await joined;
  checkEqual(j.info.user, 'bob', 'join carries the joining user');
  checkEqual(j.info.client, bctx.client, 'join carries the joining client id');
  checkEqual(dec(j.info.connInfo), { name: 'Bob' }, 'join carries connInfo');
  checkEqual(j.channel, channel, 'join context carries the channel');

  const left = waitEvent(subA, 'leave', 'bob leaves', { pred: (c) => c.info && c.info.client === bctx.client });
  subB.unsubscribe();
  const l = await left;
  checkEqual([l.info.user, l.info.client], ['bob', bctx.client], 'leave after unsubscribe carries the leaving client');

  const c = newClient({ token: connToken('carol') });
  const cctx = await connect(c, 'carol');
  const cJoined = waitEvent(subA, 'join', 'carol joins', { pred: (x) => x.info && x.info.client === cctx.client });
  const subC = c.newSubscription(channel);
  await subscribe(subC, 'carol');
  await cJoined;
  check(true, 'join seen for carol');
  const cLeft = waitEvent(subA, 'leave', 'carol leaves by disconnecting', { pred: (x) => x.info && x.info.client === cctx.client });
  c.disconnect();
  const cl = await cLeft;
  checkEqual(cl.info.user, 'carol', 'leave is sent when a subscriber disconnects');

  await sleep(300);
  const own = recA.join.filter((x) => x.info && x.info.client === actx.client).length;
  check(recA.join.filter((x) => x.info.client === bctx.client).length === 1, 'exactly one join per subscribe of bob', recA.join);
  check(recA.leave.filter((x) => x.info.client === bctx.client).length === 1, 'exactly one leave per unsubscribe of bob', recA.leave);
  void own;
});
