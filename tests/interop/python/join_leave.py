"""Scenario: join/leave events seen by another subscriber (see js/join_leave.mjs)."""

import asyncio

from lib import (
    check, check_equal, conn_token, connect, new_client, new_sub, run, subscribe, uniq,
)


async def main() -> None:
    channel = uniq("chat:joinleave-")
    a, arec = new_client(conn_token("alice"))
    b, brec = new_client(conn_token("bob", info={"name": "Bob"}))
    await connect(a, arec, "alice")
    bctx = await connect(b, brec, "bob")

    sub_a, rec_a = new_sub(a, channel)
    await subscribe(sub_a, rec_a, "alice")

    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, "bob")
    j = await rec_a.wait("join", "bob joins", pred=lambda c: c.info.client == bctx.client)
    check_equal(j.info.user, "bob", "join carries the joining user")
    check_equal(j.info.client, bctx.client, "join carries the joining client id")
    conn_info = j.info.conn_info
    if isinstance(conn_info, (bytes, bytearray)):
        import json

        conn_info = json.loads(bytes(conn_info).decode())
    check_equal(conn_info, {"name": "Bob"}, "join carries conn_info")

    await sub_b.unsubscribe()
    leave = await rec_a.wait("leave", "bob leaves", pred=lambda c: c.info.client == bctx.client)
    check_equal((leave.info.user, leave.info.client), ("bob", bctx.client),
                "leave after unsubscribe carries the leaving client")

    c, crec = new_client(conn_token("carol"))
    cctx = await connect(c, crec, "carol")
    sub_c, rec_c = new_sub(c, channel)
    await subscribe(sub_c, rec_c, "carol")
    await rec_a.wait("join", "carol joins", pred=lambda x: x.info.client == cctx.client)
    check(True, "join seen for carol")
    await c.disconnect()
    cl = await rec_a.wait("leave", "carol leaves by disconnecting", pred=lambda x: x.info.client == cctx.client)
    check_equal(cl.info.user, "carol", "leave is sent when a subscriber disconnects")

    await asyncio.sleep(0.3)
    check_equal(len([x for x in rec_a.get("join") if x.info.client == bctx.client]), 1,
                "exactly one join per subscribe of bob")
    check_equal(len([x for x in rec_a.get("leave") if x.info.client == bctx.client]), 1,
                "exactly one leave per unsubscribe of bob")


run(main)
