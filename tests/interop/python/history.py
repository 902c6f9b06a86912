"""Scenario: history with limit / since / reverse (see js/history.mjs)."""

from centrifuge import StreamPosition

from lib import (
    check, check_equal, conn_token, connect, dec, enc, new_client, new_sub, run, subscribe, uniq,
    within,
)


async def main() -> None:
    channel = uniq("chat:history-")
    a, arec = new_client(conn_token("alice"))
    await connect(a, arec, "alice")
    sub, rec = new_sub(a, channel)
    await subscribe(sub, rec, channel)

    empty = await within(sub.history(limit=10), "history of an empty channel")
    check_equal(len(empty.publications), 0, "history of a fresh channel is empty")

    for i in range(1, 6):
        await within(sub.publish(enc({"i": i})), f"publish #{i}")

    h = await within(sub.history(limit=10), "history(limit=10)")
    check_equal(len(h.publications), 5, "history(limit=10) returns all 5 publications")
    check_equal([dec(p.data) for p in h.publications], [{"i": i} for i in range(1, 6)],
                "history returns the data in publish order")
    offsets = [p.offset for p in h.publications]
    check(all(o > 0 for o in offsets) and offsets == sorted(set(offsets)), "history offsets are increasing", offsets)
    check_equal(offsets, [1, 2, 3, 4, 5], "offsets of a new stream are 1..5")
    check(isinstance(h.epoch, str) and h.epoch, "history result carries an epoch", h.epoch)
    check_equal(h.offset, offsets[-1], "history result offset is the stream top")
    check(h.publications[0].info is not None and h.publications[0].info.user == "alice",
          "history publications keep publisher info", h.publications[0].info)

    h2 = await within(sub.history(limit=2), "history(limit=2)")
    check_equal([p.offset for p in h2.publications], [1, 2], "limit 2 returns the two oldest")

    h0 = await within(sub.history(limit=0), "history(limit=0)")
    check_equal(len(h0.publications), 0, "limit 0 returns no publications")
    check_equal((h0.offset, h0.epoch), (5, h.epoch), "limit 0 still returns the stream position")

    hr = await within(sub.history(limit=2, reverse=True), "history(limit=2, reverse=True)")
    check_equal([p.offset for p in hr.publications], [5, 4],
                "reverse with limit 2 returns the two newest, newest first")

    hs = await within(sub.history(limit=10, since=StreamPosition(offset=3, epoch=h.epoch)),
                      "history since offset 3")
    check_equal([p.offset for p in hs.publications], [4, 5], "since offset 3 returns offsets 4 and 5")
    check_equal([dec(p.data) for p in hs.publications], [{"i": 4}, {"i": 5}], "since returns the right data")


run(main)
