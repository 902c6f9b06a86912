"""Scenario: WebSocket permessage-deflate (see js/compression.mjs).

The server runs with websocket.compression on and compression_min_size 0.
Python `websockets` offers permessage-deflate by default:

- the SDK's connection gets the extension in the handshake response;
- connect, subscribe and publish work over it, including a payload large
  enough to be compressed both ways;
- a raw `websockets` client with compression off connects without the
  extension and speaks the JSON protocol.
"""

import json

import websockets

from lib import (
    PROTOBUF, WS_URL, check, check_equal, conn_token, connect, dec, enc, new_client, new_sub, run,
    subscribe, uniq, within,
)


def extensions_of(client) -> str:
    conn = getattr(client, "_conn", None)
    if conn is None or conn.response is None:
        return ""
    return conn.response.headers.get("Sec-WebSocket-Extensions", "")


async def main() -> None:
    channel = uniq("chat:deflate-")
    a, arec = new_client(conn_token("alice"))
    b, brec = new_client(conn_token("bob"))
    await connect(a, arec, "alice")
    await connect(b, brec, "bob")
    for name, c in (("alice", a), ("bob", b)):
        ext = extensions_of(c)
        check("permessage-deflate" in ext, f"{name}: permessage-deflate negotiated", ext)

    sub_a, rec_a = new_sub(a, channel)
    await subscribe(sub_a, rec_a, f"alice to {channel}")
    sub_b, rec_b = new_sub(b, channel)
    await subscribe(sub_b, rec_b, f"bob to {channel}")

    payloads = [
        {"text": "hello", "n": 1},
        {"unicode": "héllo wörld ✓ 日本語 😀"},
        {"blob": "compress me " * 2000},
    ]
    for p in payloads:
        await within(sub_b.publish(enc(p)), f"bob publishes {len(json.dumps(p))} bytes")
    pubs = await rec_a.wait_count("publication", len(payloads), "alice receives the publications")
    check_equal([dec(x.pub.data) for x in pubs], payloads,
                "every payload round-trips exactly over the compressed connection")

    if not PROTOBUF:
        async with websockets.connect(WS_URL, compression=None) as plain:
            ext = plain.response.headers.get("Sec-WebSocket-Extensions", "")
            check_equal(ext, "", "no extension without an offer")
            await plain.send(json.dumps({"id": 1, "connect": {"token": conn_token("carol")}}))
            reply = json.loads(await within(plain.recv(), "connect reply on the plain socket"))
            check(reply.get("id") == 1 and reply.get("connect", {}).get("client"),
                  "raw JSON connect works without compression", reply)


run(main)
