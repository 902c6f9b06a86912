"""Scenario: private channels need a subscription token (see js/sub_token.mjs)."""

from centrifuge import ClientState

from lib import (
    check, check_equal, conn_token, connect, dec, enc, jwt, new_client, new_sub, now, run,
    rejects, sub_token, subscribe, subscribe_refused, uniq, within,
)


async def main() -> None:
    ch1 = uniq("$secret:room-")
    ch2 = uniq("$secret:room-")
    a, arec = new_client(conn_token("alice"))
    await connect(a, arec, "alice")

    s1, r1 = new_sub(a, ch1, token=sub_token("alice", ch1))
    await subscribe(s1, r1, f"{ch1} with a subscription token")
    check(True, "subscribed to a private channel with a token")

    seen = []

    async def get_token(channel: str) -> str:
        seen.append(channel)
        return sub_token("alice", channel)

    s2, r2 = new_sub(a, ch2, get_token=get_token)
    await subscribe(s2, r2, f"{ch2} with get_token")
    check_equal(seen, [ch2], "subscription get_token was called once with the channel name")

    await within(s1.publish(enc({"secret": 42})), "publish to the private channel")
    pubs = await r1.wait_count("publication", 1, "publication on the private channel is delivered")
    check_equal(dec(pubs[0].pub.data), {"secret": 42}, "private channel publication data round-trips")
    h_err = await rejects(s1.history(limit=10), "history in secret: (no history_size)")
    check_equal(h_err.code, 108, "history in a namespace without history gives 108 (not available)")

    s3, r3 = new_sub(a, uniq("$secret:room-"))
    u3 = await subscribe_refused(s3, r3, "a private channel without a token")
    check_equal(u3.code, 103, "private channel without a token is refused with 103")

    ch4 = uniq("$secret:room-")
    s4, r4 = new_sub(a, ch4, token=jwt({"sub": "alice", "channel": ch4, "exp": now() + 3600}, secret="wrong-key"))
    u4 = await subscribe_refused(s4, r4, "a private channel with a badly signed token")
    check_equal(u4.code, 103, "badly signed subscription token is refused with 103")
    check_equal(a.state, ClientState.CONNECTED, "refusals keep the connection")

    b, brec = new_client(conn_token("bob"))
    await connect(b, brec, "bob")
    ch5 = uniq("$secret:room-")
    s5, r5 = new_sub(b, ch5, token=sub_token("bob", uniq("$secret:other-")))
    await s5.subscribe()
    d = await brec.wait("disconnected", "bob uses a token for another channel")
    check_equal(d.code, 3500, "subscription token for another channel gives disconnect 3500")


run(main)
