"""Scenario: fossil delta compression on a stream subscription (see js/delta.mjs).

Alice subscribes to a `delta:` channel with delta=fossil, Carol without.
Bob publishes a ~2 KB JSON document with a small change each time: Alice
decodes every publication to the exact document, all but the first arriving
as deltas; Carol gets plain documents. Recovery after a disconnect continues
Alice's chain, and live deltas follow.
"""

import asyncio

from centrifuge import DeltaType

from lib import (
    check, check_equal, conn_token, connect, dec, enc, new_client, new_sub, run, subscribe, uniq,
    within,
)


def doc(n: int) -> dict:
    rows = [{"id": i, "name": f"row number {i}", "score": i * 7, "tags": ["a", "b"]} for i in range(30)]
    return {"version": n, "title": "a document that changes a little", "rows": rows,
            "counter": n, "note": f"edit {n}"}


async def main() -> None:
    channel = uniq("delta:doc-")
    a, arec = new_client(conn_token("alice"))
    b, brec = new_client(conn_token("bob"))
    c, crec = new_client(conn_token("carol"))
    await connect(a, arec, "alice")
    await connect(b, brec, "bob")
    await connect(c, crec, "carol")

    sub_a, rec_a = new_sub(a, channel, delta=DeltaType.FOSSIL)
    await subscribe(sub_a, rec_a, f"alice to {channel} with delta")
    sub_c, rec_c = new_sub(c, channel)
    await subscribe(sub_c, rec_c, f"carol to {channel} without delta")
    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, f"bob to {channel}")

    for n in range(1, 6):
        await within(sub_b.publish(enc(doc(n))), f"bob publishes version {n}")
    pubs = [x.pub for x in await rec_a.wait_count("publication", 5, "alice receives 5 publications")]
    check_equal([dec(p.data) for p in pubs], [doc(n) for n in range(1, 6)],
                "alice decodes every delta to the exact document")
    check_equal([p.delta for p in pubs], [False, True, True, True, True],
                "the first publication is full, the next 4 are deltas")
    plain = [x.pub for x in await rec_c.wait_count("publication", 5, "carol receives 5 publications")]
    check_equal([dec(p.data) for p in plain], [doc(n) for n in range(1, 6)],
                "carol (no delta) gets the plain documents")

    await a.disconnect()
    await arec.wait("disconnected", "alice disconnect()")
    for n in range(6, 9):
        await within(sub_b.publish(enc(doc(n))), f"bob publishes version {n} while alice is away")
    await a.connect()
    ctx = await rec_a.wait("subscribed", "alice resubscribes after connect()", after=1)
    check_equal((ctx.was_recovering, ctx.recovered), (True, True), "alice recovers")
    pubs = [x.pub for x in await rec_a.wait_count("publication", 8, "alice receives the 3 missed")]
    check_equal([(p.offset, dec(p.data)) for p in pubs[5:]], [(n, doc(n)) for n in range(6, 9)],
                "recovered publications decode to the exact documents, in order")
    await within(sub_b.publish(enc(doc(9))), "bob publishes version 9 after the recovery")
    pubs = [x.pub for x in await rec_a.wait_count("publication", 9, "alice receives the live one")]
    check_equal(dec(pubs[8].data), doc(9), "the live publication after recovery decodes")
    check(pubs[8].delta, "the live publication after recovery is a delta", pubs[8])
    await asyncio.sleep(0.2)
    check_equal(len(rec_a.get("publication")), 9, "no duplicates")


run(main)
