"""An application backend for the proxy interop scenarios: a Python `grpcio`
server implementing `CentrifugoProxy` from Rotor's own `proto/proxy.proto`.

At start the proto is compiled with `grpc_tools.protoc` into a temporary
directory (nothing generated is checked in), the server binds a free port on
127.0.0.1 and prints `PORT <n>` as its first stdout line. It stops when its
stdin reaches EOF, i.e. when the parent (the Rust runner) closes the pipe or
dies.

Behaviour (the scenarios `js/proxy_rpc.mjs` and `python/proxy_rpc.py` check
it through the SDKs):

- Connect: the connect request's `data` is JSON.
  `{"user": "alice"}` -> result with user `alice` and data
  `{"greeting": "hello alice"}`;
  `{"deny": "error"}` -> error 1403 "denied by backend" (not temporary);
  `{"deny": "disconnect"}` -> disconnect 4501 "denied by backend";
  anything else -> error 1400 "bad connect data".
- RPC: method `fail` -> error 1500 "failed by backend"; any other method ->
  result data `{"method": <method>, "user": <user>, "params": <request data>}`.
"""

import json
import os
import sys
import tempfile
import threading
from concurrent import futures

import grpc
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto")

DENY_ERROR = 1403
DENY_DISCONNECT = 4501
BAD_DATA = 1400
RPC_FAIL = 1500


def generate(out_dir: str):
    """Compile proto/proxy.proto into out_dir and import the modules."""
    # grpc_tools ships the well-known types; its include dir is not needed
    # by proxy.proto, but passing it keeps protoc quiet about imports.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.join(PROTO_DIR, "proxy.proto"),
    ])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)
    import proxy_pb2  # noqa: E402  (generated just now)
    import proxy_pb2_grpc  # noqa: E402

    return proxy_pb2, proxy_pb2_grpc


def parse(data: bytes):
    try:
        return json.loads(data.decode()) if data else None
    except ValueError:
        return None


def make_servicer(pb, pb_grpc):
    class Backend(pb_grpc.CentrifugoProxyServicer):
        def Connect(self, request, context):
            data = parse(request.data)
            if isinstance(data, dict) and data.get("deny") == "error":
                return pb.ConnectResponse(
                    error=pb.Error(code=DENY_ERROR, message="denied by backend"))
            if isinstance(data, dict) and data.get("deny") == "disconnect":
                return pb.ConnectResponse(
                    disconnect=pb.Disconnect(code=DENY_DISCONNECT, reason="denied by backend"))
            if isinstance(data, dict) and isinstance(data.get("user"), str):
                user = data["user"]
                greeting = json.dumps({"greeting": f"hello {user}"}).encode()
                return pb.ConnectResponse(result=pb.ConnectResult(user=user, data=greeting))
            return pb.ConnectResponse(error=pb.Error(code=BAD_DATA, message="bad connect data"))

        def RPC(self, request, context):
            if request.method == "fail":
                return pb.RPCResponse(error=pb.Error(code=RPC_FAIL, message="failed by backend"))
            body = {
                "method": request.method,
                "user": request.user,
                "params": parse(request.data),
            }
            return pb.RPCResponse(result=pb.RPCResult(data=json.dumps(body).encode()))

    return Backend()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rotor-proxy-backend-") as out_dir:
        pb, pb_grpc = generate(out_dir)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_CentrifugoProxyServicer_to_server(make_servicer(pb, pb_grpc), server)
        port = server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            raise SystemExit("could not bind 127.0.0.1:0")
        server.start()
        print(f"PORT {port}", flush=True)

        # Stop with the parent: it holds our stdin open while it lives.
        done = threading.Event()

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                done.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        done.wait()
        server.stop(grace=0).wait()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
