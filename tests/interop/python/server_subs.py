"""Scenario: server-side subscriptions from the token's `channels` claim
(see js/server_subs.mjs)."""

import asyncio

from lib import (
    check, check_equal, conn_token, connect, dec, enc, jwt, new_client, new_sub, now, run,
    subscribe, uniq, within,
)


async def main() -> None:
    channel = uniq("chat:server-")
    a, arec = new_client(jwt({"sub": "alice", "exp": now() + 3600, "channels": [channel]}))
    await connect(a, arec, "alice with a channels claim")
    s1 = await arec.wait("subscribed", "server-side subscription from the token",
                         pred=lambda c: c.channel == channel)
    check_equal(s1.channel, channel, "client-level subscribed event for the token channel")
    check_equal(s1.recoverable, True, "server-side subscription is recoverable (force_recovery)")
    check(s1.stream_position is not None and s1.stream_position.epoch,
          "server-side subscription has a stream position", s1.stream_position)

    b, brec = new_client(conn_token("bob"))
    bctx = await connect(b, brec, "bob")
    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, f"bob to {channel}")
    await arec.wait("join", "alice gets a client-level join for bob",
                    pred=lambda j: j.info.client == bctx.client)
    check(True, "join arrives on the server-side subscription")

    await within(sub_b.publish(enc({"n": 1})), "bob publishes n=1")
    pubs = await arec.wait_count("publication", 1, "alice receives a client-level publication")
    check_equal((pubs[0].channel, dec(pubs[0].pub.data), pubs[0].pub.offset), (channel, {"n": 1}, 1),
                "client-level publication carries channel, data and offset")

    await a.disconnect()
    await within(sub_b.publish(enc({"n": 2})), "bob publishes n=2 while alice is away")
    await within(sub_b.publish(enc({"n": 3})), "bob publishes n=3 while alice is away")
    await a.connect()
    s2 = await arec.wait("subscribed", "server-side subscription after reconnect",
                         pred=lambda c: c.channel == channel, after=1)
    check_equal((s2.was_recovering, s2.recovered), (True, True),
                "server-side subscription recovers on reconnect (ConnectRequest.subs)")
    await arec.wait_count("publication", 3, "alice receives the 2 missed publications")
    await asyncio.sleep(0.3)
    got = [(x.pub.offset, dec(x.pub.data)) for x in arec.get("publication")[1:]]
    check_equal(got, [(2, {"n": 2}), (3, {"n": 3})],
                "missed publications on the server-side subscription arrive once, in order")


run(main)
