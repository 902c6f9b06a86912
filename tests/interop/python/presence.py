"""Scenario: presence and presence stats (see js/presence.mjs)."""

import asyncio
import time

from lib import (
    check, check_equal, conn_token, connect, new_client, new_sub, run, subscribe, uniq, within,
)


async def main() -> None:
    channel = uniq("chat:presence-")
    a, arec = new_client(conn_token("alice", info={"name": "Alice"}))
    b, brec = new_client(conn_token("bob", info={"name": "Bob"}))
    a2, a2rec = new_client(conn_token("alice", info={"name": "Alice 2"}))
    actx = await connect(a, arec, "alice")
    bctx = await connect(b, brec, "bob")
    a2ctx = await connect(a2, a2rec, "alice (second connection)")

    sub_a, rec_a = new_sub(a, channel)
    await subscribe(sub_a, rec_a, "alice")
    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, "bob")

    p = await within(sub_a.presence(), "presence()")
    check_equal(sorted(p.clients), sorted([actx.client, bctx.client]),
                "presence lists both subscribed client ids")
    check_equal(p.clients[actx.client].user, "alice", "presence entry for alice has user alice")
    check_equal(p.clients[actx.client].client, actx.client, "presence entry carries the client id")
    check_equal(p.clients[bctx.client].user, "bob", "presence entry for bob has user bob")
    conn_info = p.clients[bctx.client].conn_info
    if isinstance(conn_info, (bytes, bytearray)):
        import json

        conn_info = json.loads(bytes(conn_info).decode())
    check_equal(conn_info, {"name": "Bob"}, "presence entry carries conn_info from the token info claim")

    s = await within(sub_a.presence_stats(), "presence_stats()")
    check_equal((s.num_clients, s.num_users), (2, 2), "presence_stats: 2 clients, 2 users")

    sub_a2, rec_a2 = new_sub(a2, channel)
    await subscribe(sub_a2, rec_a2, "alice (second connection)")
    s2 = await within(sub_b.presence_stats(), "presence_stats() after a second alice connection")
    check_equal((s2.num_clients, s2.num_users), (3, 2),
                "presence_stats: 3 clients, 2 users (same user twice)")
    pb = await within(sub_b.presence(), "presence() from bob")
    check(a2ctx.client in pb.clients, "second alice connection appears in presence", list(pb.clients))

    await sub_a2.unsubscribe()
    start = time.monotonic()
    while True:
        s3 = await within(sub_b.presence_stats(), "presence_stats() after unsubscribe")
        if s3.num_clients == 2 or time.monotonic() - start > 3:
            break
        await asyncio.sleep(0.05)
    check_equal((s3.num_clients, s3.num_users), (2, 2), "presence drops an unsubscribed client")


run(main)
