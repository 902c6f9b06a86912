"""Scenario: PyPI `cent` (the official Python server API client) calls every
method it supports against the real server over HTTP, and what it reports
matches what centrifuge-python clients see (see js/api_cent.mjs).

Env: ROTOR_API_URL (http://host:port/api), ROTOR_API_KEY, plus the usual
ROTOR_WS_URL / ROTOR_HMAC_SECRET for the SDK clients.
"""

import asyncio
import os

from cent import (
    AsyncClient,
    BatchRequest,
    BroadcastRequest,
    ChannelsRequest,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError

from lib import (
    check, check_equal, conn_token, connect, dec, new_client, new_sub, run, subscribe, uniq,
)

API_URL = os.environ["ROTOR_API_URL"]
API_KEY = os.environ["ROTOR_API_KEY"]


async def api_error(aw, what: str) -> CentApiResponseError:
    try:
        value = await aw
    except CentApiResponseError as e:
        return e
    check(False, f"{what}: expected an API error", value)
    raise AssertionError


async def main() -> None:
    api = AsyncClient(API_URL, API_KEY)
    user = uniq("api-user-")
    channel = uniq("chat:api-")

    c, rec = new_client(conn_token(user))
    ctx = await connect(c, rec, "SDK client")
    sub, srec = new_sub(c, channel)
    await subscribe(sub, srec, channel)

    res = await api.publish(PublishRequest(channel=channel, data={"n": 1}))
    check_equal(res.offset, 1, "publish returns the stream offset")
    check(res.epoch, "publish returns the stream epoch", res)
    pub = await srec.wait("publication", "subscriber gets the API publication")
    check_equal(dec(pub.data), {"n": 1}, "subscriber receives exactly the published data")

    other = uniq("chat:api-other-")
    bres = await api.broadcast(BroadcastRequest(channels=[channel, other], data={"n": 2}))
    check_equal(len(bres.responses), 2, "broadcast answers per channel")
    check(all(r.error is None for r in bres.responses), "broadcast succeeded everywhere", bres)
    await srec.wait_count("publication", 2, "subscriber gets the broadcast")

    pres = await api.presence(PresenceRequest(channel=channel))
    check(ctx.client in pres.presence, "presence lists the SDK client", pres.presence)
    check_equal(pres.presence[ctx.client].user, user, "presence entry carries the user")
    stats = await api.presence_stats(PresenceStatsRequest(channel=channel))
    check_equal((stats.num_clients, stats.num_users), (1, 1), "presence_stats counts")

    hist = await api.history(HistoryRequest(channel=channel, limit=-1))
    check_equal([(p.offset, p.data) for p in hist.publications], [(1, {"n": 1}), (2, {"n": 2})],
                "history returns what was published, in order")
    check_equal(hist.offset, 2, "history reports the top offset")
    await api.history_remove(HistoryRemoveRequest(channel=channel))
    hist = await api.history(HistoryRequest(channel=channel, limit=-1))
    check_equal((len(hist.publications), hist.offset), (0, 2),
                "history_remove drops publications but keeps the position")

    chans = await api.channels(ChannelsRequest(pattern="chat:api-*"))
    check(channel in chans.channels, "channels lists the subscribed channel", chans.channels)
    check_equal(chans.channels[channel].num_clients, 1, "channels counts its subscriber")

    info = await api.info(InfoRequest())
    check_equal(len(info.nodes), 1, "info lists one node")
    check(info.nodes[0].num_clients >= 1 and info.nodes[0].uid, "info counts clients", info)

    server_chan = uniq("chat:api-server-")
    await api.subscribe(SubscribeRequest(user=user, channel=server_chan))
    s = await rec.wait("subscribed", "server-side subscribe reaches the client",
                       pred=lambda x: x.channel == server_chan)
    check_equal(s.channel, server_chan, "client sees the API server-side subscription")
    await api.publish(PublishRequest(channel=server_chan, data={"srv": True}))
    p = await rec.wait("publication", "publication on the server-side subscription",
                       pred=lambda x: x.channel == server_chan)
    check_equal(dec(p.pub.data), {"srv": True}, "server-side subscription delivers")
    await api.unsubscribe(UnsubscribeRequest(user=user, channel=server_chan))
    await rec.wait("unsubscribed", "server-side unsubscribe reaches the client",
                   pred=lambda x: x.channel == server_chan)

    batch = await api.batch(BatchRequest(requests=[
        PublishRequest(channel=channel, data={"n": 3}),
        PresenceStatsRequest(channel=channel),
        HistoryRequest(channel=channel, limit=0),
    ]))
    check_equal(len(batch.replies), 3, "batch answers every command")
    check_equal(batch.replies[0].offset, 3, "batch publish result")
    check_equal(batch.replies[1].num_clients, 1, "batch presence_stats result")
    check_equal(batch.replies[2].offset, 3, "batch history result")

    e = await api_error(api.publish(PublishRequest(channel="nope:x", data={})), "unknown ns")
    check_equal(e.code, 102, "unknown namespace is API error 102")
    e = await api_error(api.presence(PresenceRequest(channel="dialog:x")), "presence off")
    check_equal(e.code, 108, "presence on a namespace without presence is 108")

    bad = AsyncClient(API_URL, "wrong-key")
    try:
        await bad.info(InfoRequest())
        check(False, "a wrong API key must be refused")
    except CentUnauthorizedError:
        check(True, "a wrong API key gets 401 (CentUnauthorizedError)")

    await api.refresh(RefreshRequest(user=user, expired=True))
    d = await rec.wait("connecting", "refresh(expired) closes the connection",
                       pred=lambda x: x.code == 3005)
    check_equal(d.code, 3005, "refresh(expired) closes with 3005 and the SDK reconnects")

    c2, rec2 = new_client(conn_token(user))
    await connect(c2, rec2, "second SDK client")
    await api.disconnect(DisconnectRequest(user=user, disconnect=Disconnect(code=4501, reason="bye")))
    d = await rec2.wait("disconnected", "API disconnect reaches the client")
    check_equal((d.code, d.reason), (4501, "bye"), "client sees the API disconnect code and reason")
    await asyncio.sleep(0)


run(main)
