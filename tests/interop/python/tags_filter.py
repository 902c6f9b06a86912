"""Scenario: publication filtering by tags (see js/tags_filter.mjs).

Alice subscribes to a `tags:` channel with the filter "ticker in [AAPL, MSFT]
and price > 100", Carol without one; the server API (PyPI `cent`) publishes
6 tagged publications. Alice gets exactly the matching ones with their
offsets, Carol all 6; recovery after a disconnect sends Alice only the
matching missed ones; a malformed filter is error 107 and the connection
stays up.
"""

import asyncio
import os

from cent import AsyncClient, PublishRequest
from centrifuge import ClientState
from centrifuge.filter import Filter, FilterNode

from lib import (
    check_equal, conn_token, connect, dec, new_client, new_sub, run, subscribe, subscribe_refused,
    uniq,
)

ROWS = [
    (1, {"ticker": "AAPL", "price": "101.5"}, True),
    (2, {"ticker": "AAPL", "price": "99.99"}, False),
    (3, {"ticker": "GOOG", "price": "150"}, False),
    (4, {"ticker": "MSFT", "price": "300"}, True),
    (5, {"price": "500"}, False),
    (6, {"ticker": "MSFT", "price": "100.0001"}, True),
]


async def main() -> None:
    api = AsyncClient(os.environ["ROTOR_API_URL"], os.environ["ROTOR_API_KEY"])
    channel = uniq("tags:quotes-")
    a, arec = new_client(conn_token("alice"))
    c, crec = new_client(conn_token("carol"))
    await connect(a, arec, "alice")
    await connect(c, crec, "carol")

    tf = Filter.all(Filter.is_in("ticker", ["AAPL", "MSFT"]), Filter.gt("price", "100"))
    sub_a, rec_a = new_sub(a, channel, tags_filter=tf)
    await subscribe(sub_a, rec_a, f"alice to {channel} with a tags filter")
    sub_c, rec_c = new_sub(c, channel)
    await subscribe(sub_c, rec_c, f"carol to {channel} without a filter")

    for n, tags, _ in ROWS:
        await api.publish(PublishRequest(channel=channel, data={"n": n}, tags=tags))
    want = [n for n, _, keep in ROWS if keep]
    await rec_c.wait_count("publication", 6, "carol receives all 6 publications")
    pubs = [x.pub for x in await rec_a.wait_count("publication", len(want), "alice receives the matching ones")]
    await asyncio.sleep(0.3)
    pubs = [x.pub for x in rec_a.get("publication")]
    check_equal([dec(p.data)["n"] for p in pubs], want, "alice gets exactly the matching publications, in order")
    check_equal([p.offset for p in pubs], want, "they keep their stream offsets")

    await a.disconnect()
    await arec.wait("disconnected", "alice disconnect()")
    for n, tags, _ in ROWS:
        await api.publish(PublishRequest(channel=channel, data={"n": n + 10}, tags=tags))
    await a.connect()
    ctx = await rec_a.wait("subscribed", "alice resubscribes after connect()", after=1)
    check_equal((ctx.was_recovering, ctx.recovered), (True, True), "alice recovers across filtered publications")
    await rec_a.wait_count("publication", 2 * len(want), "alice receives the matching missed publications")
    await asyncio.sleep(0.3)
    pubs = [x.pub for x in rec_a.get("publication")]
    check_equal([dec(p.data)["n"] for p in pubs[len(want):]], [n + 10 for n in want],
                "recovery sends only the matching publications")

    bad, rbad = new_sub(a, uniq("tags:bad-"), tags_filter=FilterNode({"key": "ticker", "cmp": "like", "val": "A"}))
    u = await subscribe_refused(bad, rbad, "a malformed filter")
    check_equal(u.code, 107, "a malformed filter is error 107")
    check_equal(a.state, ClientState.CONNECTED, "the connection stays up after a bad filter")


run(main)
