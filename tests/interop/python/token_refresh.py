"""Scenario: connection token refresh before expiry (see js/token_refresh.mjs).

The connection token expires in ~3 s; get_token returns a fresh one. The SDK
must call get_token (refresh command) and stay connected past the original
expiry (the suite config sets client.expired_close_delay to 1s). The same for
a subscription token on a private channel (sub_refresh).
"""

import asyncio

from centrifuge import ClientState, SubscriptionState

from lib import (
    check, check_equal, conn_token, connect, enc, jwt, new_client, new_sub, now, run, sub_token,
    subscribe, uniq, within,
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

    # A private channel whose subscription token also expires in ~3 s.
    secret = uniq("$secret:refresh-")
    sub_calls = []

    async def get_sub_token(ch: str) -> str:
        sub_calls.append(ch)
        return sub_token("alice", ch, ttl=3600)

    s_sub, s_rec = new_sub(a, secret, token=sub_token("alice", secret, ttl=3), get_token=get_sub_token)
    await subscribe(s_sub, s_rec, f"{secret} with a short-lived subscription token")

    await asyncio.sleep(max(0, exp - now()) + 3.5)

    check(len(calls) >= 1, "get_token was called to refresh the connection token", calls)
    check_equal(a.state, ClientState.CONNECTED, "client is still connected past the original token expiry")
    check_equal(len(rec.get("disconnected")), 0, "no disconnected event")
    check_equal(len(rec.get("connecting")), 1, "no reconnect happened (only the initial connecting)")
    check_equal(len(rec.get("connected")), 1, "connected only once")
    check_equal(rec.get("error"), [], "no client errors (refresh succeeded)")
    await within(sub.publish(enc({"after": "refresh"})), "publish after the original expiry")
    check(True, "commands still work after the original expiry")

    check(len(sub_calls) >= 1, "subscription get_token was called to refresh the subscription token", sub_calls)
    check_equal(s_sub.state, SubscriptionState.SUBSCRIBED,
                "private subscription is still subscribed past its token expiry")
    check_equal(len(s_rec.get("subscribing")), 1, "private subscription never resubscribed")
    check_equal((len(s_rec.get("unsubscribed")), len(s_rec.get("error"))), (0, 0),
                "no unsubscribe or subscription error")


run(main)
