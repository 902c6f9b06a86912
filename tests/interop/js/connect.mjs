// Scenario: connect with a JWT.
//  - a subscription made before connect() rides in the same frame as connect;
//  - `connected` fires with a non-empty client id over the scenario's transport
//    (ROTOR_TRANSPORT: websocket, http_stream or sse);
//  - two connections get different client ids;
//  - an expired token gets connect error 109, the SDK calls getToken and connects;
//  - a token with a bad signature is refused with disconnect 3500 (terminal).
import {
  run, newClient, connect, connToken, jwt, now, check, checkEqual, waitEvent, record, sleep, TRANSPORT,
} from './lib.mjs';

await run(async () => {
  const a = newClient({ token: connToken('alice') });
  const ctx = await connect(a, 'alice');
  check(typeof ctx.client === 'string' && ctx.client.length > 0, 'connected event carries a client id', ctx);
  checkEqual(ctx.transport, TRANSPORT, `connected over the ${TRANSPORT} transport`);
  checkEqual(a.state, 'connected', 'client state is connected');

  const b = newClient({ token: connToken('bob') });
  const ctxB = await connect(b, 'bob');
  check(ctxB.client && ctxB.client !== ctx.client, 'second connection gets a different client id', [ctx.client, ctxB.client]);

  // A subscription created before connect(): the SDK sends connect and
  // subscribe in one frame.
  const e = newClient({ token: connToken('erin') });
  const early = e.newSubscription('chat:early-frame');
  const earlySubscribed = waitEvent(early, 'subscribed', 'subscribe batched with connect');
  early.subscribe();
  await connect(e, 'erin with a pending subscription');
  await earlySubscribed;
  check(true, 'connect + subscribe in one frame both succeed');

  // Expired token: connect error 109, then getToken, then connected.
  let getTokenCalls = 0;
  const c = newClient({
    token: jwt({ sub: 'carol', exp: now() - 60 }),
    getToken: async () => { getTokenCalls++; return connToken('carol'); },
  });
  const cErrors = record(c, ['error']);
  const ctxC = await connect(c, 'carol with an expired token');
  check(getTokenCalls >= 1, 'expired connection token made the SDK call getToken', getTokenCalls);
  check(ctxC.client, 'connected after getToken with a fresh token');
  const connectErrs = cErrors.error.filter((e) => e.type === 'connect');
  check(connectErrs.length >= 1 && connectErrs[0].error.code === 109,
    'expired connection token is answered with error 109 (token expired)', cErrors.error);

  // Bad signature: disconnect 3500, no reconnect.
  const d = newClient({ token: jwt({ sub: 'dave', exp: now() + 3600 }, 'not-the-secret') });
  const dRec = record(d, ['connected', 'disconnected']);
  const disc = waitEvent(d, 'disconnected', 'token with a bad signature');
  d.connect();
  const dctx = await disc;
  checkEqual(dctx.code, 3500, 'token with a bad signature gives disconnect code 3500');
  await sleep(500);
  checkEqual(dRec.connected.length, 0, 'client with a bad token never connected');
  checkEqual(d.state, 'disconnected', 'client with a bad token stays disconnected (terminal code)');
});
