"""Scenario: connection token refresh before expiry (see js/token_refresh.mjs).

The connection token expires in ~3 s; get_token returns a fresh one. The SDK
must call get_token (refresh command) and stay connected past the original
expiry (the suite config sets client.expired_close_delay to 1s).
"""

import asyncio

from centrifuge import ClientState

from lib import (
    check, check_equal, conn_token, connect, enc, jwt, new_client, new_sub, now, run, subscribe,
    uniq, within,
)


async def main() -> None:
    channel = uniq("chat:refresh-")
    exp = now() + 3
    calls = []

    async def get_token() -> str:
        calls.append(1)
        return conn_token("alice", ttl=3600)

    a, rec = new_client(jwt({"sub": "alice", "exp": exp}), get_token=get_token)
    await connect(a, rec, "alice with a short-lived token")
    sub, srec = new_sub(a, channel)
    await subscribe(sub, srec, channel)

    await asyncio.sleep(max(0, exp - now()) + 3.5)

    check(len(calls) >= 1, "get_token was called to refresh the connection token", calls)
    check_equal(a.state, ClientState.CONNECTED, "client is still connected past the original token expiry")
    check_equal(len(rec.get("disconnected")), 0, "no disconnected event")
    check_equal(len(rec.get("connecting")), 1, "no reconnect happened (only the initial connecting)")
    check_equal(len(rec.get("connected")), 1, "connected only once")
    check_equal(rec.get("error"), [], "no client errors (refresh succeeded)")
    await within(sub.publish(enc({"after": "refresh"})), "publish after the original expiry")
    check(True, "commands still work after the original expiry")


run(main)
