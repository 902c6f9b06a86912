"""Scenario: connect with a JWT (see js/connect.mjs).

- on_connected fires with a non-empty client id;
- two connections get different client ids;
- an expired token gets connect error 109, the SDK calls get_token and connects;
- a token with a bad signature is refused with disconnect 3500 (terminal).
"""

import asyncio

from centrifuge import ClientState, ReplyError

from lib import (
    check, check_equal, conn_token, connect, jwt, new_client, now, run,
)


async def main() -> None:
    a, arec = new_client(conn_token("alice"))
    ctx = await connect(a, arec, "alice")
    check(isinstance(ctx.client, str) and ctx.client, "connected event carries a client id", ctx)
    check_equal(a.state, ClientState.CONNECTED, "client state is connected")

    b, brec = new_client(conn_token("bob"))
    ctx_b = await connect(b, brec, "bob")
    check(ctx_b.client and ctx_b.client != ctx.client,
          "second connection gets a different client id", (ctx.client, ctx_b.client))

    calls = []

    async def get_token() -> str:
        calls.append(1)
        return conn_token("carol")

    c, crec = new_client(jwt({"sub": "carol", "exp": now() - 60}), get_token=get_token)
    ctx_c = await connect(c, crec, "carol with an expired token")
    check(len(calls) >= 1, "expired connection token made the SDK call get_token", calls)
    check(ctx_c.client, "connected after get_token with a fresh token")
    codes = [e.error.code for e in crec.get("error") if isinstance(e.error, ReplyError)]
    check(codes[:1] == [109], "expired connection token is answered with error 109 (token expired)",
          crec.get("error"))

    d, drec = new_client(jwt({"sub": "dave", "exp": now() + 3600}, secret="not-the-secret"))
    await d.connect()
    dctx = await drec.wait("disconnected", "token with a bad signature")
    check_equal(dctx.code, 3500, "token with a bad signature gives disconnect code 3500")
    await asyncio.sleep(0.5)
    check_equal(len(drec.get("connected")), 0, "client with a bad token never connected")
    check_equal(d.state, ClientState.DISCONNECTED, "client with a bad token stays disconnected")


run(main)
