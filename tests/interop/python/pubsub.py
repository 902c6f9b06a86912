"""Scenario: subscribe + publish from a second client + receive (see js/pubsub.mjs).

Data must round-trip exactly (JSON value in JSON mode, the exact bytes in
protobuf mode); the publication carries the publisher's ClientInfo and an offset.
"""

import asyncio

from lib import (
    PROTOBUF, check, check_equal, conn_token, connect, dec, enc, try_dec, new_client, new_sub, run,
    subscribe, uniq, until, within,
)


async def main() -> None:
    channel = uniq("chat:pubsub-")
    a, arec = new_client(conn_token("alice", info={"name": "Alice"}))
    b, brec = new_client(conn_token("bob", info={"name": "Bob"}))
    await connect(a, arec, "alice")
    bctx = await connect(b, brec, "bob")

    sub_a, rec_a = new_sub(a, channel)
    await subscribe(sub_a, rec_a, f"alice to {channel}")
    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, f"bob to {channel}")

    payloads = [
        {"text": "hello", "n": 1},
        {"nested": {"list": [1, 2.5, -3, True, False, None, "x"], "empty": {}, "emptyList": []},
         "unicode": "héllo wörld ✓ 日本語 😀", "quote": "\"'\\/\n\t"},
        "a plain string",
        12345,
        [1, "two", {"three": 3}],
    ]
    for p in payloads:
        await within(sub_b.publish(enc(p)), f"bob publishes {p!r}")
    check(True, f"bob published {len(payloads)} messages (publish replies received)")

    pubs = await rec_a.wait_count("publication", len(payloads), "alice receives the publications")
    check_equal([dec(x.pub.data) for x in pubs], payloads,
                "alice receives every payload exactly, in order")
    if PROTOBUF:
        check_equal(bytes(pubs[1].pub.data), enc(payloads[1]),
                    "protobuf payload bytes are identical to the published bytes")
    first = pubs[0].pub
    check(first.info is not None and first.info.user == "bob",
          "publication info.user is the publisher", first.info)
    check_equal(first.info.client, bctx.client, "publication info.client is the publisher client id")
    offsets = [x.pub.offset for x in pubs]
    check(all(o > 0 for o in offsets) and all(offsets[i] == offsets[i - 1] + 1 for i in range(1, len(offsets))),
          "publications carry consecutive offsets (history is on in chat:)", offsets)

    own = await rec_b.wait_count("publication", len(payloads), "publisher receives its own publications")
    check_equal([dec(x.pub.data) for x in own], payloads, "publisher receives its own publications exactly")

    await asyncio.sleep(0.3)
    check_equal(len(rec_a.get("publication")), len(payloads), "no duplicate or extra publications")

    # A bigger payload (32 KiB of text) round-trips too.
    big = {"blob": "x" * (32 * 1024)}
    await within(sub_b.publish(enc(big)), "bob publishes a 32 KiB payload")
    pubs = await rec_a.wait_count("publication", len(payloads) + 1, "alice receives the 32 KiB publication")
    check_equal(dec(pubs[len(payloads)].pub.data), big, "32 KiB payload round-trips exactly")

    if PROTOBUF:
        # Protobuf carries arbitrary bytes, not only JSON text.
        raw = bytes([0, 255, 1, 128, 10, 13, 0])
        await within(sub_b.publish(raw), "bob publishes non-UTF-8 bytes")
        pubs = await rec_a.wait_count("publication", len(payloads) + 2, "alice receives the binary publication")
        check_equal(bytes(pubs[len(payloads) + 1].pub.data), raw, "binary payload round-trips byte for byte")

    # After unsubscribe, nothing more is delivered to alice.
    before = len(rec_a.get("publication"))
    await sub_a.unsubscribe()
    await within(sub_b.publish(enc({"after": "unsubscribe"})), "bob publishes after alice unsubscribed")

    def last_seen() -> bool:
        return any(try_dec(x.pub.data) == {"after": "unsubscribe"} for x in rec_b.get("publication"))

    await until(last_seen, "bob receives his last publication")
    await asyncio.sleep(0.3)
    check_equal(len(rec_a.get("publication")), before, "no publication after unsubscribe")


run(main)
