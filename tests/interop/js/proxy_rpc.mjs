// Scenario: connect and RPC through a gRPC proxy backend
// (python/proxy_backend.py, generated from proto/proxy.proto).
//  - a client with no token connects; the connect proxy names the user
//    from the connect data and returns connect data of its own;
//  - rpc('echo') returns what the backend computed (method, user, params);
//  - rpc('fail') rejects with the backend's error code and message;
//  - a connect the backend refuses with an error, or with a disconnect,
//    ends with that code and no reconnect.
import {
  run, newClient, connect, enc, dec, check, checkEqual, rejects, waitEvent, within, record, sleep,
} from './lib.mjs';

await run(async () => {
  const a = newClient({ data: enc({ user: 'alice' }) });
  const ctx = await connect(a, 'alice without a token');
  check(typeof ctx.client === 'string' && ctx.client.length > 0,
    'client without a token connects through the connect proxy', ctx);
  checkEqual(dec(ctx.data), { greeting: 'hello alice' }, 'connected data is what the connect proxy returned');

  const params = { n: 42, s: 'héllo' };
  const res = await within(a.rpc('echo', enc(params)), 5000, "rpc('echo')");
  checkEqual(dec(res.data), { method: 'echo', user: 'alice', params },
    'rpc echo returns what the backend computed, with the user the connect proxy set');

  const res2 = await within(a.rpc('sum.v2', enc([1, 2])), 5000, "rpc('sum.v2')");
  checkEqual(dec(res2.data), { method: 'sum.v2', user: 'alice', params: [1, 2] },
    'another method reaches the backend with its own name');

  const err = await rejects(a.rpc('fail', enc({})), "rpc('fail')");
  checkEqual(err.code, 1500, "rpc('fail') rejects with the backend's error code");
  checkEqual(err.message, 'failed by backend', "rpc('fail') rejects with the backend's message");
  checkEqual(a.state, 'connected', 'an rpc error leaves the client connected');

  const b = newClient({ data: enc({ user: 'bob' }) });
  await connect(b, 'bob without a token');
  const resB = await within(b.rpc('echo', enc({})), 5000, "bob's rpc('echo')");
  checkEqual(dec(resB.data).user, 'bob', 'each connection gets the user its connect proxy call returned');

  for (const [how, code] of [['error', 1403], ['disconnect', 4501]]) {
    const d = newClient({ data: enc({ deny: how }) });
    const rec = record(d, ['connected', 'disconnected']);
    const disc = waitEvent(d, 'disconnected', `connect denied with ${how}`);
    d.connect();
    const dctx = await disc;
    checkEqual(dctx.code, code, `connect denied by the backend with ${how} ends with code ${code}`);
    await sleep(300);
    checkEqual(rec.connected.length, 0, `client denied with ${how} never connected`);
    checkEqual(d.state, 'disconnected', `client denied with ${how} stays disconnected`);
  }
});
