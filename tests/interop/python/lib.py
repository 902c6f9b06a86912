"""Shared helpers for the centrifuge-python interop scenarios.

Every scenario is a standalone asyncio script:

    ROTOR_WS_URL=ws://127.0.0.1:8000/connection/websocket \\
    ROTOR_HMAC_SECRET=... tests/interop/.venv/bin/python tests/interop/python/pubsub.py [json|protobuf]

The encoding comes from the first CLI argument, or env ROTOR_ENCODING, or
defaults to json (protobuf = Client(use_protobuf=True), which requests the
`centrifuge-protobuf` subprotocol). Each check prints one line ("ok - ...");
the first failure prints "FAIL - ..." and exits 1. A global deadline
(ROTOR_SCENARIO_TIMEOUT_MS, default 20000) makes sure nothing hangs.

Coverage note: centrifuge-python 0.7 can express every scenario of the JS
suite (connect, pub/sub, history with limit/since/reverse, recovery,
presence, join/leave, connection token refresh, subscription tokens,
user-limited channels, permission errors), so the Python list is the same.
Left out because the Python SDK cannot express them:
- the `transport` name of the connected context (no such field in Python);
- recovery from an explicit stream position with a stale epoch
  (`recovered: false`): centrifuge-js has the `since` subscription option,
  centrifuge-python only `get_state`, which asks the server for error 112
  instead of `recovered: false`.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from centrifuge import (
    Client,
    ClientEventHandler,
    ReplyError,
    SubscriptionEventHandler,
)

WS_URL = os.environ.get("ROTOR_WS_URL", "ws://127.0.0.1:8000/connection/websocket")
SECRET = os.environ.get("ROTOR_HMAC_SECRET", "")
ENCODING = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ROTOR_ENCODING", "json")).lower()
if ENCODING not in ("json", "protobuf"):
    print(f"unknown encoding {ENCODING} (want json or protobuf)", file=sys.stderr)
    sys.exit(2)
PROTOBUF = ENCODING == "protobuf"
SCENARIO = os.path.splitext(os.path.basename(sys.argv[0]))[0]
TIMEOUT_S = float(os.environ.get("ROTOR_SCENARIO_TIMEOUT_MS", "20000")) / 1000.0
if not SECRET:
    print("ROTOR_HMAC_SECRET is not set", file=sys.stderr)
    sys.exit(2)
if os.environ.get("ROTOR_INTEROP_DEBUG") == "1":
    logging.basicConfig(level=logging.DEBUG)

_clients: List[Client] = []
_checks = 0


class Failure(Exception):
    pass


def fail(message: str) -> None:
    raise Failure(message)


def ok(what: str) -> None:
    global _checks
    _checks += 1
    print(f"ok - {what}", flush=True)


def check(cond: Any, what: str, details: Any = None) -> None:
    if not cond:
        fail(f"{what}: {details!r}" if details is not None else what)
    ok(what)


def check_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        fail(f"{what}: expected {expected!r}, got {actual!r}")
    ok(what)


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run the scenario under the global deadline; exit 0 on success, 1 on failure."""
    print(f"# python {ENCODING} {SCENARIO} against {WS_URL}", flush=True)

    async def main() -> int:
        code = 0
        try:
            await asyncio.wait_for(body(), TIMEOUT_S)
        except Failure as e:
            print(f"FAIL - [python/{ENCODING}/{SCENARIO}] {e}", flush=True)
            code = 1
        except asyncio.TimeoutError:
            print(
                f"FAIL - [python/{ENCODING}/{SCENARIO}] scenario did not finish within "
                f"{TIMEOUT_S:.0f} s (after {_checks} passed checks)",
                flush=True,
            )
            code = 1
        except Exception as e:  # noqa: BLE001 - report anything
            import traceback

            traceback.print_exc()
            print(f"FAIL - [python/{ENCODING}/{SCENARIO}] exception: {e!r}", flush=True)
            code = 1
        for c in _clients:
            try:
                await asyncio.wait_for(c.disconnect(), 2)
            except Exception:  # noqa: BLE001
                pass
        if code == 0:
            print(f"# {_checks} checks passed", flush=True)
        return code

    code = asyncio.run(main())
    sys.stdout.flush()
    # Leave at once: lingering SDK tasks must not keep the process alive.
    os._exit(code)


# ---------------------------------------------------------------------------
# Tokens (HS256 with the standard library)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: Dict[str, Any], secret: Optional[str] = None) -> str:
    key = (SECRET if secret is None else secret).encode()
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def now() -> int:
    return int(time.time())


def conn_token(user: str, ttl: int = 3600, info: Any = None) -> str:
    claims: Dict[str, Any] = {"sub": user, "exp": now() + ttl}
    if info is not None:
        claims["info"] = info
    return jwt(claims)


def sub_token(user: str, channel: str, ttl: int = 3600) -> str:
    return jwt({"sub": user, "channel": channel, "exp": now() + ttl})


def uniq(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


# ---------------------------------------------------------------------------
# Payloads: JSON values in JSON mode, bytes (UTF-8 JSON text) in protobuf mode.


def enc(value: Any) -> Any:
    if PROTOBUF:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return value


def dec(data: Any) -> Any:
    if not PROTOBUF:
        return data
    if not isinstance(data, (bytes, bytearray)):
        fail(f"protobuf payload is not bytes: {data!r}")
    try:
        return json.loads(bytes(data).decode())
    except ValueError:
        fail(f"protobuf payload is not the JSON bytes that were published: {data!r}")


def try_dec(data: Any) -> Any:
    """Like dec, but returns None instead of failing on a non-JSON payload."""
    if not PROTOBUF:
        return data
    try:
        return json.loads(bytes(data).decode())
    except (ValueError, TypeError):
        return None


# ---------------------------------------------------------------------------
# Event recording


class Recorder:
    """Collects events by name; tests wait on predicates over them."""

    def __init__(self) -> None:
        self.events: Dict[str, List[Any]] = {}
        self._cond: Optional[asyncio.Condition] = None

    def _c(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def add(self, name: str, ctx: Any) -> None:
        self.events.setdefault(name, []).append(ctx)
        async with self._c():
            self._c().notify_all()

    def get(self, name: str) -> List[Any]:
        return self.events.setdefault(name, [])

    async def wait(self, name: str, what: str, pred: Callable[[Any], bool] = lambda _: True,
                   timeout: float = 5.0, after: int = 0) -> Any:
        """Wait for an event `name` (index >= after) matching pred; return its context."""

        async def find() -> Any:
            async with self._c():
                while True:
                    for ctx in self.get(name)[after:]:
                        if pred(ctx):
                            return ctx
                    await self._c().wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            fail(f"waiting for '{name}' ({what}): timed out after {timeout} s; "
                 f"events so far: { {k: len(v) for k, v in self.events.items()} }")

    async def wait_count(self, name: str, n: int, what: str, timeout: float = 5.0) -> List[Any]:
        async def find() -> List[Any]:
            async with self._c():
                while len(self.get(name)) < n:
                    await self._c().wait()
                return self.get(name)

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            fail(f"{what}: expected {n} '{name}' events within {timeout} s, got {len(self.get(name))}")
        return []


class ClientEvents(ClientEventHandler):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def on_connecting(self, ctx):
        await self.rec.add("connecting", ctx)

    async def on_connected(self, ctx):
        await self.rec.add("connected", ctx)

    async def on_disconnected(self, ctx):
        await self.rec.add("disconnected", ctx)

    async def on_error(self, ctx):
        await self.rec.add("error", ctx)

    # Server-side subscriptions (token `channels` claim) report at client level.
    async def on_subscribed(self, ctx):
        await self.rec.add("subscribed", ctx)

    async def on_subscribing(self, ctx):
        await self.rec.add("subscribing", ctx)

    async def on_unsubscribed(self, ctx):
        await self.rec.add("unsubscribed", ctx)

    async def on_publication(self, ctx):
        await self.rec.add("publication", ctx)

    async def on_join(self, ctx):
        await self.rec.add("join", ctx)

    async def on_leave(self, ctx):
        await self.rec.add("leave", ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def on_subscribing(self, ctx):
        await self.rec.add("subscribing", ctx)

    async def on_subscribed(self, ctx):
        await self.rec.add("subscribed", ctx)

    async def on_unsubscribed(self, ctx):
        await self.rec.add("unsubscribed", ctx)

    async def on_publication(self, ctx):
        await self.rec.add("publication", ctx)

    async def on_join(self, ctx):
        await self.rec.add("join", ctx)

    async def on_leave(self, ctx):
        await self.rec.add("leave", ctx)

    async def on_error(self, ctx):
        await self.rec.add("error", ctx)


def new_client(token: str = "", get_token=None) -> "tuple[Client, Recorder]":
    rec = Recorder()
    c = Client(
        WS_URL,
        events=ClientEvents(rec),
        token=token,
        get_token=get_token,
        use_protobuf=PROTOBUF,
        timeout=5.0,
        min_reconnect_delay=0.1,
        max_reconnect_delay=1.0,
        proxy=None,
    )
    _clients.append(c)
    return c, rec


async def connect(c: Client, rec: Recorder, what: str) -> Any:
    n = len(rec.get("connected"))
    await c.connect()
    return await rec.wait("connected", f"{what} connects", after=n)


def new_sub(c: Client, channel: str, **kwargs: Any):
    rec = Recorder()
    sub = c.new_subscription(channel, events=SubEvents(rec), **kwargs)
    return sub, rec


async def _outcome(rec: Recorder, what: str, n_sub: int, n_unsub: int) -> "tuple[bool, Any]":
    async def find():
        async with rec._c():
            while True:
                if len(rec.get("subscribed")) > n_sub:
                    return True, rec.get("subscribed")[n_sub]
                if len(rec.get("unsubscribed")) > n_unsub:
                    return False, rec.get("unsubscribed")[n_unsub]
                await rec._c().wait()

    try:
        return await asyncio.wait_for(find(), 5.0)
    except asyncio.TimeoutError:
        fail(f"subscribe {what}: neither subscribed nor unsubscribed within 5 s; "
             f"errors: {rec.get('error')!r}")
    return False, None


async def subscribe(sub, rec: Recorder, what: str) -> Any:
    n_sub, n_unsub = len(rec.get("subscribed")), len(rec.get("unsubscribed"))
    await sub.subscribe()
    okay, ctx = await _outcome(rec, what, n_sub, n_unsub)
    if not okay:
        fail(f"subscribe {what}: refused with {ctx!r}")
    return ctx


async def subscribe_refused(sub, rec: Recorder, what: str) -> Any:
    n_sub, n_unsub = len(rec.get("subscribed")), len(rec.get("unsubscribed"))
    await sub.subscribe()
    okay, ctx = await _outcome(rec, what, n_sub, n_unsub)
    if okay:
        fail(f"subscribe {what}: expected a refusal, but subscribed: {ctx!r}")
    return ctx


async def within(aw: Awaitable[Any], what: str, timeout: float = 5.0) -> Any:
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        fail(f"{what}: timed out after {timeout} s")
    except ReplyError as e:
        fail(f"{what}: server replied with error {e.code} {e.message!r}")


async def rejects(aw: Awaitable[Any], what: str, timeout: float = 5.0) -> ReplyError:
    try:
        value = await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        fail(f"{what}: no reply within {timeout} s")
    except ReplyError as e:
        return e
    fail(f"{what}: expected an error, got success {value!r}")
    raise AssertionError  # unreachable


async def until(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            fail(f"{what}: condition not met within {timeout} s")
        await asyncio.sleep(0.02)
