"""Scenario: connect and RPC through a gRPC proxy backend
(python/proxy_backend.py, generated from proto/proxy.proto); see
js/proxy_rpc.mjs.

- a client with no token connects; the connect proxy names the user from the
  connect data and returns connect data of its own;
- rpc("echo") returns what the backend computed (method, user, params);
- rpc("fail") raises ReplyError with the backend's code and message;
- a connect the backend refuses with an error, or with a disconnect, ends
  with that code and no reconnect.
"""

import asyncio

from centrifuge import Client, ClientState

import lib
from lib import (
    ClientEvents, Recorder, check, check_equal, connect, dec, enc, rejects, run, within,
)


def client_with_data(data) -> "tuple[Client, Recorder]":
    """Like lib.new_client, but without a token and with connect data."""
    rec = Recorder()
    c = Client(
        lib.WS_URL,
        events=ClientEvents(rec),
        data=enc(data),
        use_protobuf=lib.PROTOBUF,
        timeout=5.0,
        min_reconnect_delay=0.1,
        max_reconnect_delay=1.0,
        proxy=None,
    )
    lib._clients.append(c)
    return c, rec


async def main() -> None:
    a, arec = client_with_data({"user": "alice"})
    ctx = await connect(a, arec, "alice without a token")
    check(isinstance(ctx.client, str) and ctx.client,
          "client without a token connects through the connect proxy", ctx)
    check_equal(dec(ctx.data), {"greeting": "hello alice"},
                "connected data is what the connect proxy returned")

    params = {"n": 42, "s": "héllo"}
    res = await within(a.rpc("echo", enc(params)), "rpc('echo')")
    check_equal(dec(res.data), {"method": "echo", "user": "alice", "params": params},
                "rpc echo returns what the backend computed, with the user the connect proxy set")

    res2 = await within(a.rpc("sum.v2", enc([1, 2])), "rpc('sum.v2')")
    check_equal(dec(res2.data), {"method": "sum.v2", "user": "alice", "params": [1, 2]},
                "another method reaches the backend with its own name")

    err = await rejects(a.rpc("fail", enc({})), "rpc('fail')")
    check_equal(err.code, 1500, "rpc('fail') raises the backend's error code")
    check_equal(err.message, "failed by backend", "rpc('fail') raises the backend's message")
    check_equal(a.state, ClientState.CONNECTED, "an rpc error leaves the client connected")

    b, brec = client_with_data({"user": "bob"})
    await connect(b, brec, "bob without a token")
    res_b = await within(b.rpc("echo", enc({})), "bob's rpc('echo')")
    check_equal(dec(res_b.data)["user"], "bob",
                "each connection gets the user its connect proxy call returned")

    for how, code in (("error", 1403), ("disconnect", 4501)):
        d, drec = client_with_data({"deny": how})
        await d.connect()
        dctx = await drec.wait("disconnected", f"connect denied with {how}")
        check_equal(dctx.code, code, f"connect denied by the backend with {how} ends with code {code}")
        await asyncio.sleep(0.3)
        check_equal(len(drec.get("connected")), 0, f"client denied with {how} never connected")
        check_equal(d.state, ClientState.DISCONNECTED, f"client denied with {how} stays disconnected")


run(main)
