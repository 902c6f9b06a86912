"""Scenario: Python `grpcio` against the gRPC server API, the way an operator
or a service with no generated code meets it: discover
`centrifugal.centrifugo.api.CentrifugoApi` by server reflection (v1alpha, the
only version grpcio-reflection speaks), build request messages from the
reflected descriptors, call publish/history/info/batch with the API key, check
that a wrong or missing key is UNAUTHENTICATED and that `grpc.health.v1`
says SERVING. A centrifuge-python subscriber checks the publish arrives.

Env: ROTOR_GRPC_ADDR (host:port), ROTOR_GRPC_API_KEY, plus the usual
ROTOR_WS_URL / ROTOR_HMAC_SECRET; with ROTOR_GRPC_CA (a CA file) the channels
speak TLS and trust that CA.
"""

import os

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from lib import (
    check, check_equal, conn_token, connect, dec, new_client, new_sub, run, subscribe, uniq,
)

ADDR = os.environ["ROTOR_GRPC_ADDR"]
KEY = os.environ["ROTOR_GRPC_API_KEY"]
CA = os.environ.get("ROTOR_GRPC_CA")
SERVICE = "centrifugal.centrifugo.api.CentrifugoApi"


def credentials():
    """TLS credentials trusting ROTOR_GRPC_CA, or None for plain text."""
    if not CA:
        return None
    with open(CA, "rb") as f:
        return grpc.ssl_channel_credentials(root_certificates=f.read())
PACKAGE = "centrifugal.centrifugo.api"


class Api:
    """Unary calls built from reflected descriptors."""

    def __init__(self, channel: grpc.aio.Channel, pool: descriptor_pool.DescriptorPool) -> None:
        self.channel = channel
        self.pool = pool
        self.service = pool.FindServiceByName(SERVICE)

    def message(self, name: str, **fields):
        cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        return cls(**fields)

    async def call(self, method: str, request, key=KEY, compression=None):
        m = self.service.FindMethodByName(method)
        out = message_factory.GetMessageClass(m.output_type)
        stub = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=out.FromString,
        )
        metadata = [("authorization", f"apikey {key}")] if key is not None else []
        return await stub(request, metadata=metadata, timeout=5, compression=compression)


async def main() -> None:
    # Reflection uses a blocking channel (the descriptor database is sync and
    # the pool asks it lazily, so it stays open until the end).
    creds = credentials()
    sync_channel = (
        grpc.secure_channel(ADDR, creds) if creds else grpc.insecure_channel(ADDR)
    )
    db = ProtoReflectionDescriptorDatabase(sync_channel)
    services = list(db.get_services())
    check(SERVICE in services, "reflection lists CentrifugoApi", services)
    pool = descriptor_pool.DescriptorPool(db)

    channel_cm = (
        grpc.aio.secure_channel(ADDR, creds) if creds else grpc.aio.insecure_channel(ADDR)
    )
    async with channel_cm as channel:
        api = Api(channel, pool)
        methods = [m.name for m in api.service.methods]
        for m in ("Publish", "Broadcast", "History", "Info", "Batch", "Presence", "Channels"):
            check(m in methods, f"reflected service has {m}", methods)

        health = health_pb2_grpc.HealthStub(channel)
        for svc in ("", SERVICE):
            r = await health.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5)
            check_equal(r.status, health_pb2.HealthCheckResponse.SERVING,
                        f"grpc.health.v1 says SERVING for {svc or '(server)'}")

        user = uniq("grpc-user-")
        channel_name = uniq("chat:grpc-")
        c, rec = new_client(conn_token(user))
        await connect(c, rec, "SDK client")
        sub, srec = new_sub(c, channel_name)
        await subscribe(sub, srec, channel_name)

        resp = await api.call("Publish", api.message(
            "PublishRequest", channel=channel_name, data=b'{"via":"grpc"}'))
        check(not resp.HasField("error"), "publish over gRPC succeeds", resp)
        check_equal(resp.result.offset, 1, "publish result carries the offset")
        pub = await srec.wait("publication", "subscriber gets the gRPC publication")
        check_equal(dec(pub.pub.data), {"via": "grpc"}, "subscriber receives the gRPC payload")

        resp = await api.call("Publish", api.message(
            "PublishRequest", channel=channel_name, data=b'{"via":"gzip"}'),
            compression=grpc.Compression.Gzip)
        check_equal(resp.result.offset, 2, "gzip-compressed publish works")

        hist = await api.call("History", api.message("HistoryRequest", channel=channel_name, limit=-1))
        check_equal([(p.offset, p.data) for p in hist.result.publications],
                    [(1, b'{"via":"grpc"}'), (2, b'{"via":"gzip"}')],
                    "history over gRPC returns both publications")

        info = await api.call("Info", api.message("InfoRequest"))
        check_equal(len(info.result.nodes), 1, "info lists one node")
        check(info.result.nodes[0].num_clients >= 1, "info counts the SDK client", info)

        cmd = api.message("Command")
        cmd.publish.channel = channel_name
        cmd.publish.data = b'{"via":"batch"}'
        cmd2 = api.message("Command")
        cmd2.presence_stats.channel = channel_name
        batch = await api.call("Batch", api.message("BatchRequest", commands=[cmd, cmd2]))
        check_equal(len(batch.replies), 2, "batch answers both commands")
        check_equal(batch.replies[0].publish.offset, 3, "batch publish result")
        check_equal(batch.replies[1].presence_stats.num_clients, 1, "batch presence_stats result")

        bad = await api.call("Publish", api.message("PublishRequest", channel="nope:x", data=b"{}"))
        check_equal(bad.error.code, 102, "unknown namespace is error 102 inside the response")

        for key, what in (("wrong", "wrong key"), (None, "missing key")):
            try:
                await api.call("Info", api.message("InfoRequest"), key=key)
                check(False, f"{what} must be refused")
            except grpc.aio.AioRpcError as e:
                check_equal(e.code(), grpc.StatusCode.UNAUTHENTICATED, f"{what} is UNAUTHENTICATED")
    sync_channel.close()


run(main)
