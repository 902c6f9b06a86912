// Shared helpers for the centrifuge-js interop scenarios.
//
// Every scenario is a standalone ESM script run by Node 20:
//
//   ROTOR_WS_URL=ws://127.0.0.1:8000/connection/websocket \
//   ROTOR_HMAC_SECRET=... node tests/interop/js/pubsub.mjs [json|protobuf]
//
// The encoding comes from the first CLI argument, or env ROTOR_ENCODING, or
// defaults to json. The transport comes from ROTOR_TRANSPORT: `websocket`
// (default), `http_stream` or `sse` (the bidirectional emulation: the SDK
// gets a transports list with `${ROTOR_HTTP_URL}/connection/<transport>` and
// the absolute emulation endpoint `${ROTOR_HTTP_URL}/emulation`; SSE is
// JSON-only). Each check prints one line ("ok - ..."); the first failure
// prints "FAIL - ..." and exits 1. A global deadline (ROTOR_SCENARIO_TIMEOUT_MS,
// default 20000) makes sure nothing hangs.

import { createHmac, randomBytes } from 'node:crypto';
import { isDeepStrictEqual, inspect } from 'node:util';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';

export const WS_URL = process.env.ROTOR_WS_URL || 'ws://127.0.0.1:8000/connection/websocket';
export const SECRET = process.env.ROTOR_HMAC_SECRET || '';
export const ENCODING = (process.argv[2] || process.env.ROTOR_ENCODING || 'json').toLowerCase();
if (ENCODING !== 'json' && ENCODING !== 'protobuf') {
  console.error(`unknown encoding ${ENCODING} (want json or protobuf)`);
  process.exit(2);
}
export const PROTOBUF = ENCODING === 'protobuf';
/** The transport every client of the scenario uses: websocket, http_stream or sse. */
export const TRANSPORT = (process.env.ROTOR_TRANSPORT || 'websocket').toLowerCase();
if (!['websocket', 'http_stream', 'sse'].includes(TRANSPORT)) {
  console.error(`unknown transport ${TRANSPORT} (want websocket, http_stream or sse)`);
  process.exit(2);
}
if (TRANSPORT === 'sse' && PROTOBUF) {
  console.error('the sse transport is JSON-only');
  process.exit(2);
}
/** The server's base URL (`http://127.0.0.1:port`) for the emulation transports. */
export const HTTP_URL = (process.env.ROTOR_HTTP_URL
  || WS_URL.replace(/^ws/, 'http').replace(/\/connection\/websocket$/, '')).replace(/\/+$/, '');
// ROTOR_SCENARIO_NAME names a runner whose file name says little (browser/run.mjs).
const SCENARIO = process.env.ROTOR_SCENARIO_NAME
  || (process.argv[1] ? process.argv[1].split('/').pop().replace(/\.mjs$/, '') : 'scenario');
const LABEL = TRANSPORT === 'websocket' ? `js/${ENCODING}/${SCENARIO}` : `js/${TRANSPORT}/${ENCODING}/${SCENARIO}`;
const TIMEOUT_MS = Number(process.env.ROTOR_SCENARIO_TIMEOUT_MS || 20000);
const DEBUG = process.env.ROTOR_INTEROP_DEBUG === '1';

if (!SECRET) {
  console.error('ROTOR_HMAC_SECRET is not set');
  process.exit(2);
}

// The SDK build matching the encoding: the protobuf build requests the
// `centrifuge-protobuf` WebSocket subprotocol by itself.
const mod = PROTOBUF ? await import('centrifuge/build/protobuf') : await import('centrifuge');
export const Centrifuge = mod.Centrifuge;
/** The build of the other encoding, for mixed-encoding checks. */
export const OtherCentrifuge = (PROTOBUF ? await import('centrifuge') : await import('centrifuge/build/protobuf')).Centrifuge;

const clients = [];
let checks = 0;

export function log(line) {
  console.log(line);
}

export function fail(message) {
  console.log(`FAIL - [${LABEL}] ${message}`);
  for (const c of clients) {
    try { c.disconnect(); } catch { /* ignore */ }
  }
  process.exit(1);
}

export function ok(what) {
  checks++;
  console.log(`ok - ${what}`);
}

export function check(cond, what, details) {
  if (!cond) {
    fail(`${what}${details !== undefined ? `: ${typeof details === 'string' ? details : show(details)}` : ''}`);
  }
  ok(what);
}

export function checkEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
  ok(what);
}

export function show(v) {
  return inspect(v, { depth: 6, breakLength: Infinity });
}

const deadline = setTimeout(() => {
  fail(`scenario did not finish within ${TIMEOUT_MS} ms (after ${checks} passed checks)`);
}, TIMEOUT_MS);

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${show(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${e && e.stack ? e.stack : show(e)}`));

/** Run the scenario body, then disconnect every client and exit 0. */
export async function run(body) {
  log(`# ${LABEL} against ${TRANSPORT === 'websocket' ? WS_URL : `${HTTP_URL}/connection/${TRANSPORT}`}`);
  try {
    await body();
  } catch (e) {
    fail(`exception: ${e && e.stack ? e.stack : show(e)}`);
  }
  for (const c of clients) {
    c.disconnect();
  }
  clearTimeout(deadline);
  log(`# ${checks} checks passed`);
  // Give the close frames a moment, then leave even if a socket lingers.
  setTimeout(() => process.exit(0), 50);
}

// ---------------------------------------------------------------------------
// Tokens (HS256, no extra packages)

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

export function jwt(claims, secret = SECRET) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = b64url(createHmac('sha256', secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${sig}`;
}

export const now = () => Math.floor(Date.now() / 1000);

/** Connection token: sub = user, exp = now + ttl seconds, optional info. */
export function connToken(user, { ttl = 3600, info } = {}) {
  const claims = { sub: user, exp: now() + ttl };
  if (info !== undefined) claims.info = info;
  return jwt(claims);
}

/** Subscription token: sub = user, channel, exp. */
export function subToken(user, channel, { ttl = 3600 } = {}) {
  return jwt({ sub: user, channel, exp: now() + ttl });
}

export function uniq(prefix) {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------
// Payloads: JSON values in JSON mode, bytes (UTF-8 JSON text) in protobuf mode.

export function enc(value) {
  return PROTOBUF ? new TextEncoder().encode(JSON.stringify(value)) : value;
}

export function dec(data) {
  if (!PROTOBUF) return data;
  if (!(data instanceof Uint8Array)) {
    fail(`protobuf payload is not a Uint8Array: ${show(data)}`);
  }
  const text = new TextDecoder().decode(data);
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`protobuf payload is not the JSON bytes that were published: ${show(text)}`);
  }
}

/** Like dec, but returns undefined instead of failing on a non-JSON payload. */
export function tryDec(data) {
  if (!PROTOBUF) return data;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Clients and waiting

/**
 * What `new Centrifuge(endpoint, …)` gets for `transport`: the WebSocket URL,
 * or a one-entry transports list for the emulation transports.
 */
export function endpointFor(transport) {
  if (transport === 'websocket') return WS_URL;
  return [{ transport, endpoint: `${HTTP_URL}/connection/${transport}` }];
}

/**
 * A client of the scenario's encoding and transport (`otherEncoding`: of the
 * other encoding; a protobuf client of an SSE scenario uses http_stream, SSE
 * being JSON-only).
 */
export function newClient(opts = {}, { otherEncoding = false } = {}) {
  const Ctor = otherEncoding ? OtherCentrifuge : Centrifuge;
  const protobuf = otherEncoding ? !PROTOBUF : PROTOBUF;
  const transport = TRANSPORT === 'sse' && protobuf ? 'http_stream' : TRANSPORT;
  const c = new Ctor(endpointFor(transport), {
    websocket: WebSocket,
    eventsource: EventSource,
    emulationEndpoint: `${HTTP_URL}/emulation`,
    timeout: 5000,
    debug: DEBUG,
    // Tests must not reconnect for long behind our back.
    minReconnectDelay: 100,
    maxReconnectDelay: 1000,
    ...opts,
  });
  clients.push(c);
  return c;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve with the value of `promise`, or fail the scenario after `ms`. */
export async function within(promise, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (e) {
    fail(`${what}: ${e && e.message ? e.message : show(e)}`);
  } finally {
    clearTimeout(t);
  }
}

/** Wait for `event` on an emitter, optionally matching `pred`; fail after `ms`. */
export function waitEvent(emitter, event, what, { ms = 5000, pred = () => true } = {}) {
  return within(new Promise((resolve) => {
    const h = (ctx) => {
      if (pred(ctx)) {
        emitter.off(event, h);
        resolve(ctx);
      }
    };
    emitter.on(event, h);
  }), ms, `waiting for '${event}' (${what})`);
}

/**
 * Records every event of the given names on an emitter, so tests can look at
 * what arrived (and at what should NOT have arrived).
 */
export function record(emitter, events) {
  const rec = { all: [] };
  for (const ev of events) {
    rec[ev] = [];
    emitter.on(ev, (ctx) => {
      rec[ev].push(ctx);
      rec.all.push([ev, ctx]);
    });
  }
  return rec;
}

/** Poll until `cond()` is truthy; fail after `ms`. */
export async function until(cond, what, ms = 5000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) fail(`${what}: condition not met within ${ms} ms`);
    await sleep(20);
  }
}

/** Connect a client and return the `connected` context. */
export async function connect(c, what = 'client') {
  const p = waitEvent(c, 'connected', `${what} connects`);
  const errors = [];
  const onDisc = (ctx) => errors.push(ctx);
  c.on('disconnected', onDisc);
  c.connect();
  const ctx = await p;
  c.off('disconnected', onDisc);
  return ctx;
}

/** Subscribe and wait for `subscribed`; fail (with the unsubscribe code) if it is refused. */
export async function subscribe(sub, what) {
  const outcome = new Promise((resolve) => {
    const onSub = (ctx) => { cleanup(); resolve({ ok: true, ctx }); };
    const onUnsub = (ctx) => { cleanup(); resolve({ ok: false, ctx }); };
    const cleanup = () => { sub.off('subscribed', onSub); sub.off('unsubscribed', onUnsub); };
    sub.on('subscribed', onSub);
    sub.on('unsubscribed', onUnsub);
  });
  sub.subscribe();
  const res = await within(outcome, 5000, `subscribe ${what}`);
  if (!res.ok) fail(`subscribe ${what}: refused with ${show(res.ctx)}`);
  return res.ctx;
}

/** Subscribe expecting a refusal; return the `unsubscribed` context (code = server error code). */
export async function subscribeRefused(sub, what) {
  const errs = [];
  sub.on('error', (ctx) => errs.push(ctx));
  const outcome = new Promise((resolve) => {
    const onSub = (ctx) => { cleanup(); resolve({ ok: true, ctx }); };
    const onUnsub = (ctx) => { cleanup(); resolve({ ok: false, ctx }); };
    const cleanup = () => { sub.off('subscribed', onSub); sub.off('unsubscribed', onUnsub); };
    sub.on('subscribed', onSub);
    sub.on('unsubscribed', onUnsub);
  });
  sub.subscribe();
  const res = await within(outcome, 5000, `subscribe ${what} (expecting refusal; errors so far ${show(errs)})`);
  if (res.ok) fail(`subscribe ${what}: expected a refusal, but subscribed: ${show(res.ctx)}`);
  return res.ctx;
}

/** Await a promise expected to reject with a server error; return the error. */
export async function rejects(promise, what, ms = 5000) {
  let t;
  const timeout = new Promise((resolve) => {
    t = setTimeout(() => resolve({ timeout: true }), ms);
  });
  const res = await Promise.race([
    promise.then((v) => ({ value: v }), (e) => ({ error: e })),
    timeout,
  ]);
  clearTimeout(t);
  if (res.timeout) fail(`${what}: no reply within ${ms} ms`);
  if (!('error' in res)) fail(`${what}: expected an error, got success ${show(res.value)}`);
  return res.error;
}
