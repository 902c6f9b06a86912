"""A unidirectional gRPC client for `tests/uni_grpc.rs`: Python `grpcio` with
code generated at start from Rotor's own `proto/unistream.proto` (into a
temporary directory; nothing generated is checked in).

Usage: uni_grpc_client.py <host:port> <ConnectRequest as proto3 JSON> [CA PEM]

With a CA certificate file the channel is TLS (server name `localhost`).

Calls `CentrifugoUniStream.Consume` (with the metadata `x-uni-test: 1`) and
prints every received Push as one JSON line (proto3 JSON form, field names as
in the proto, so `bytes` are base64), flushing each. When the stream ends it
prints `END <status code name>` (`END OK` for a clean end) and exits.
"""

import json
import os
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto")


def generate(out_dir: str):
    """Compile proto/unistream.proto into out_dir and import the modules."""
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.join(PROTO_DIR, "unistream.proto"),
    ])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)
    import unistream_pb2  # noqa: E402  (generated just now)
    import unistream_pb2_grpc  # noqa: E402

    return unistream_pb2, unistream_pb2_grpc


def main():
    addr, request = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as out_dir:
        pb, pb_grpc = generate(out_dir)
        req = json_format.Parse(request, pb.ConnectRequest())
        if len(sys.argv) > 3:
            with open(sys.argv[3], "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            channel = grpc.secure_channel(
                addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
        else:
            channel = grpc.insecure_channel(addr)
        with channel:
            stub = pb_grpc.CentrifugoUniStreamStub(channel)
            try:
                for push in stub.Consume(req, metadata=[("x-uni-test", "1")]):
                    as_dict = json_format.MessageToDict(
                        push, preserving_proto_field_name=True)
                    print(json.dumps(as_dict), flush=True)
                print("END OK", flush=True)
            except grpc.RpcError as e:
                print(f"END {e.code().name}", flush=True)


if __name__ == "__main__":
    main()
