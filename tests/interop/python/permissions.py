"""Scenario: permission and namespace errors (see js/permissions.mjs)."""

from centrifuge import ClientState, SubscriptionState

from lib import (
    check, check_equal, conn_token, connect, enc, new_client, new_sub, rejects, run,
    subscribe_refused, uniq, until,
)


async def main() -> None:
    a, arec = new_client(conn_token("alice"))
    await connect(a, arec, "alice")

    closed, rc = new_sub(a, uniq("closed:"))
    u1 = await subscribe_refused(closed, rc, "closed: namespace")
    check_equal(u1.code, 103, "subscribe in a namespace without allow_* options gives 103")

    unknown, ru = new_sub(a, "nope:x")
    u2 = await subscribe_refused(unknown, ru, "unknown namespace nope:x")
    check_equal(u2.code, 102, "subscribe in an unknown namespace gives 102")

    ch = uniq("chat:perm-")
    e1 = await rejects(a.publish(ch, enc({"x": 1})), "publish to chat: without subscribing")
    check_equal(e1.code, 103, "publish without a subscription gives 103 (allow_publish_for_subscriber only)")

    e2 = await rejects(a.presence(ch), "presence on chat: without subscribing")
    check_equal(e2.code, 103, "presence without a subscription gives 103 (allow_presence_for_subscriber only)")

    e3 = await rejects(a.publish("nope:x", enc({"x": 1})), "publish to an unknown namespace")
    check_equal(e3.code, 102, "publish to an unknown namespace gives 102")

    long_sub, rl = new_sub(a, "chat:" + "x" * 260)
    u3 = await subscribe_refused(long_sub, rl, "a channel name longer than 255 bytes")
    check_equal(u3.code, 107, "channel name over channel.max_length (255) gives 107")

    # client.channel_limit defaults to 128 subscriptions per connection.
    many, mrec = new_client(conn_token("manny"))
    await connect(many, mrec, "manny")
    prefix = uniq("chat:many-")
    subs = [many.new_subscription(f"{prefix}-{i}") for i in range(128)]
    for s in subs:
        await s.subscribe()
    await until(lambda: all(s.state == SubscriptionState.SUBSCRIBED for s in subs),
                "128 subscriptions on one connection", timeout=10)
    check(True, "128 subscriptions on one connection succeed")
    over, ro = new_sub(many, f"{prefix}-128")
    u4 = await subscribe_refused(over, ro, "the 129th subscription")
    check_equal(u4.code, 106, "subscription over client.channel_limit (128) gives 106")

    check_equal(a.state, ClientState.CONNECTED, "errors keep the connection open")


run(main)
