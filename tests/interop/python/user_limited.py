"""Scenario: user-limited channels (see js/user_limited.mjs)."""

from centrifuge import ClientState

from lib import (
    check, check_equal, conn_token, connect, dec, enc, new_client, new_sub, run, subscribe,
    subscribe_refused, uniq, within,
)


async def main() -> None:
    tag = uniq("")
    alice, bob, carol = f"alice{tag}", f"bob{tag}", f"carol{tag}"
    channel = f"dialog:#{alice},{bob}"

    a, arec = new_client(conn_token(alice))
    b, brec = new_client(conn_token(bob))
    c, crec = new_client(conn_token(carol))
    await connect(a, arec, alice)
    await connect(b, brec, bob)
    await connect(c, crec, carol)

    sa, ra = new_sub(a, channel)
    await subscribe(sa, ra, f"{alice} to {channel}")
    check(True, "first listed user subscribes to the user-limited channel")
    sb, rb = new_sub(b, channel)
    await subscribe(sb, rb, f"{bob} to {channel}")
    check(True, "second listed user subscribes to the user-limited channel")

    await within(sa.publish(enc({"hi": bob})), "alice publishes in the dialog")
    pubs = await rb.wait_count("publication", 1, "bob receives the dialog message")
    check_equal(dec(pubs[0].pub.data), {"hi": bob}, "dialog message round-trips")

    sc, rc = new_sub(c, channel)
    u = await subscribe_refused(sc, rc, f"{carol} to {channel}")
    check_equal(u.code, 103, "a user not listed in the channel is refused with 103")
    check_equal(c.state, ClientState.CONNECTED, "the refused user stays connected")


run(main)
