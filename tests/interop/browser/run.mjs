// Browser interop: the centrifuge-js browser bundle in headless Chromium
// (driven by playwright-core) against the rotor binary.
//
// A tiny static HTTP server on 127.0.0.1:ROTOR_BROWSER_PORT serves
// browser/index.html and the SDK's dist bundles, so the page has a real
// http:// origin that the server checks (the Rust side puts exactly that
// origin into client.allowed_origins). For each transport of
// ROTOR_BROWSER_TRANSPORTS (comma-separated: websocket, http_stream, sse) and
// each encoding the transport carries (SSE is JSON-only), a fresh page:
//  - connects over that transport (native WebSocket / fetch streaming /
//    EventSource of the browser; cross-origin, so CORS is exercised too);
//  - subscribes to a chat: channel, receives a publication made through the
//    server HTTP API (ROTOR_API_URL, ROTOR_API_KEY);
//  - publishes from the page, receives its own publication, and the API
//    history shows both; presence lists the page's user;
//  - closing the tab (no disconnect()) ends the session: presence empties.
// A page served from a second origin that is NOT allowed must not connect
// over the same transport.
//
// Env: the usual ROTOR_WS_URL / ROTOR_HTTP_URL / ROTOR_HMAC_SECRET (see
// ../js/lib.mjs), ROTOR_BROWSER_PORT, ROTOR_BROWSER_TRANSPORTS,
// ROTOR_CHROMIUM (default /usr/bin/chromium). Output: one "ok - ..." line per
// check, "FAIL - ..." and exit 1 on the first failure.

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

process.env.ROTOR_SCENARIO_NAME ||= 'browser';
process.env.ROTOR_SCENARIO_TIMEOUT_MS ||= '50000';
const { run, check, checkEqual, fail, log, connToken, uniq, show } = await import('../js/lib.mjs');
const { chromium } = await import('playwright-core');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SDK_DIST = path.join(HERE, '..', 'node_modules', 'centrifuge', 'dist');
const WS_URL = process.env.ROTOR_WS_URL || '';
const HTTP_URL = (process.env.ROTOR_HTTP_URL || '').replace(/\/+$/, '');
const API_URL = process.env.ROTOR_API_URL || `${HTTP_URL}/api`;
const API_KEY = process.env.ROTOR_API_KEY || '';
const PORT = Number(process.env.ROTOR_BROWSER_PORT || 0);
const CHROMIUM = process.env.ROTOR_CHROMIUM || '/usr/bin/chromium';
const TRANSPORTS = (process.env.ROTOR_BROWSER_TRANSPORTS || 'websocket,http_stream,sse')
  .split(',').map((t) => t.trim()).filter(Boolean);
const DEBUG = process.env.ROTOR_INTEROP_DEBUG === '1';

if (!WS_URL || !HTTP_URL || !PORT) {
  console.error('ROTOR_WS_URL, ROTOR_HTTP_URL and ROTOR_BROWSER_PORT must be set');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Static server: the page and the SDK bundles, nothing else.

const FILES = {
  '/': [path.join(HERE, 'index.html'), 'text/html; charset=utf-8'],
  '/index.html': [path.join(HERE, 'index.html'), 'text/html; charset=utf-8'],
  '/centrifuge.js': [path.join(SDK_DIST, 'centrifuge.js'), 'text/javascript; charset=utf-8'],
  '/centrifuge.protobuf.js': [path.join(SDK_DIST, 'centrifuge.protobuf.js'), 'text/javascript; charset=utf-8'],
};

function startStatic(port) {
  const server = http.createServer(async (req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (req.method !== 'GET' || !file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const body = await readFile(file[0]);
      res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-store' }).end(body);
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------------------
// Server HTTP API

async function api(method, params) {
  const res = await fetch(`${API_URL}/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  const text = await res.text();
  if (res.status !== 200) fail(`API ${method}: HTTP ${res.status} ${text}`);
  const body = JSON.parse(text);
  if (body.error) fail(`API ${method}: error ${show(body.error)}`);
  return body.result || {};
}

// ---------------------------------------------------------------------------
// Pages

/** Opens the test page of `origin` in a fresh context; page errors fail the test. */
async function openPage(browser, origin, encoding) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => fail(`uncaught error in the page (${origin}): ${e && e.stack ? e.stack : e}`));
  if (DEBUG) page.on('console', (m) => log(`# page: ${m.text()}`));
  await page.goto(`${origin}/?encoding=${encoding}`);
  return { context, page };
}

/** page.evaluate, failing the test with the page's event log when it throws. */
async function inPage(page, what, fn, arg) {
  try {
    return await page.evaluate(fn, arg);
  } catch (e) {
    const events = await page.evaluate(() => window.rotor.events).catch(() => '(page gone)');
    fail(`${what}: ${e && e.message ? e.message : show(e)}; page events: ${show(events)}`);
  }
}

/** Waits until the page has received `n` publications. */
async function received(page, n, what) {
  try {
    await page.waitForFunction((k) => window.rotor.received.length >= k, n, { timeout: 5000 });
  } catch {
    const got = await page.evaluate(() => window.rotor.received).catch(() => '(page gone)');
    fail(`${what}: the page did not receive ${n} publication(s); it has ${show(got)}`);
  }
  return page.evaluate(() => window.rotor.received);
}

/** The full round trip on one transport × encoding from the allowed origin. */
async function roundTrip(browser, origin, transport, encoding) {
  const tag = `${transport}/${encoding}`;
  const { context, page } = await openPage(browser, origin, encoding);
  const user = uniq(`browser-${transport}-`);
  const conn = await inPage(page, `${tag}: connect`, (a) => window.rotor.connect(a),
    { transport, httpUrl: HTTP_URL, wsUrl: WS_URL, token: connToken(user) });
  checkEqual(conn.transport, transport, `${tag}: the browser connects over ${transport}`);
  check(typeof conn.client === 'string' && conn.client.length > 0, `${tag}: connected with a client id`, conn);

  const channel = uniq(`chat:browser-${transport}-`);
  const sub = await inPage(page, `${tag}: subscribe`, (ch) => window.rotor.subscribe(ch), channel);
  check(sub.recoverable === true && typeof sub.epoch === 'string', `${tag}: subscribed to a recoverable channel`, sub);

  const fromApi = { from: 'api', transport, text: 'héllo ✓' };
  await api('publish', { channel, data: fromApi });
  const got1 = await received(page, 1, `${tag}: publication from the HTTP API`);
  checkEqual([got1[0].channel, got1[0].data, got1[0].offset], [channel, fromApi, 1],
    `${tag}: the page receives the API publication (channel, data, offset)`);

  const fromPage = { from: 'page', transport, n: [1, 2, 3] };
  const pub = await inPage(page, `${tag}: publish from the page`,
    ([ch, v]) => window.rotor.publish(ch, v), [channel, fromPage]);
  check(pub.ok, `${tag}: publish from the page succeeds`, pub);
  const got2 = await received(page, 2, `${tag}: the page's own publication`);
  checkEqual([got2[1].data, got2[1].offset, got2[1].user], [fromPage, 2, user],
    `${tag}: the page receives its own publication with its user`);

  const hist = await api('history', { channel, limit: 10 });
  checkEqual((hist.publications || []).map((p) => p.data), [fromApi, fromPage],
    `${tag}: API history holds the API and the page publication`);

  const users = await inPage(page, `${tag}: presence`, (ch) => window.rotor.presenceUsers(ch), channel);
  checkEqual(users, [user], `${tag}: presence lists the page's user`);

  // Closing the tab without disconnect() ends the session on the server:
  // the user leaves presence promptly (the stream's client went away).
  const before = await api('presence', { channel });
  checkEqual(Object.values(before.presence || {}).map((i) => i.user), [user],
    `${tag}: API presence lists the page's client`);
  await context.close();
  const start = Date.now();
  for (;;) {
    const p = await api('presence', { channel });
    if (Object.keys(p.presence || {}).length === 0) break;
    if (Date.now() - start > 5000) fail(`${tag}: presence still lists ${show(p.presence)} 5 s after the tab closed`);
    await new Promise((r) => setTimeout(r, 50));
  }
  check(true, `${tag}: closing the tab ends the session (presence empty after ${Date.now() - start} ms)`);
}

/** From an origin missing from client.allowed_origins the page must not connect. */
async function refusedOrigin(browser, origin, transport) {
  const { context, page } = await openPage(browser, origin, 'json');
  const res = await page.evaluate(async (a) => {
    try {
      const c = await window.rotor.connect(a);
      return { connected: true, c };
    } catch (e) {
      return { connected: false, events: window.rotor.events };
    } finally {
      window.rotor.disconnect();
    }
  }, { transport, httpUrl: HTTP_URL, wsUrl: WS_URL, token: connToken('intruder'), timeoutMs: 1500 });
  check(!res.connected, `${transport}: a page from a disallowed origin (${origin}) does not connect`, res);
  check(res.events.some(([ev, ctx]) => ev === 'error' && ctx.type === 'transport'),
    `${transport}: the refused page sees transport errors`, res.events);
  await context.close();
}

await run(async () => {
  const good = await startStatic(PORT);
  const bad = await startStatic(0);
  const goodOrigin = `http://127.0.0.1:${PORT}`;
  const badOrigin = `http://127.0.0.1:${bad.address().port}`;
  const args = ['--disable-dev-shm-usage'];
  if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args, timeout: 20000 });
  log(`# ${browser.version()} loads ${goodOrigin}; server ${HTTP_URL}`);
  try {
    for (const transport of TRANSPORTS) {
      if (!['websocket', 'http_stream', 'sse'].includes(transport)) fail(`unknown transport ${transport}`);
      const encodings = transport === 'sse' ? ['json'] : ['json', 'protobuf'];
      for (const encoding of encodings) {
        await roundTrip(browser, goodOrigin, transport, encoding);
      }
      await refusedOrigin(browser, badOrigin, transport);
    }
  } finally {
    await browser.close();
    good.close();
    bad.close();
  }
});
