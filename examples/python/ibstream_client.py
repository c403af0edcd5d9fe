"""Shared helpers of the ibstream Python examples.

The client code is generated at run time from ibstream's .proto files with
grpc_tools.protoc into a temporary directory, so nothing generated is checked in and
the examples always match the server's contract.
"""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import grpc

# proto/ at the repository root, unless IBSTREAM_PROTO_DIR says otherwise.
DEFAULT_PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def generate(proto_dir=None):
    """Compiles ibstream/v1/*.proto into a temporary package directory and imports it.

    Returns the module namespace `ibstream.v1` with market_data_pb2,
    market_data_pb2_grpc, connection_pb2 and connection_pb2_grpc.
    """
    from grpc_tools import protoc
    import importlib
    import importlib.resources

    proto_dir = Path(proto_dir or os.environ.get("IBSTREAM_PROTO_DIR") or DEFAULT_PROTO_DIR)
    sources = sorted((proto_dir / "ibstream" / "v1").glob("*.proto"))
    if not sources:
        sys.exit(f"error: no .proto files under {proto_dir}/ibstream/v1")
    out = tempfile.mkdtemp(prefix="ibstream-py-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    # The well-known types (timestamp, duration, field mask) ship with grpc_tools.
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *[str(s.relative_to(proto_dir)) for s in sources],
    ]
    if protoc.main(args) != 0:
        sys.exit("error: grpc_tools.protoc failed to compile the ibstream protos")
    sys.path.insert(0, out)
    modules = {}
    for name in ("market_data_pb2", "market_data_pb2_grpc", "connection_pb2", "connection_pb2_grpc"):
        modules[name] = importlib.import_module(f"ibstream.v1.{name}")
    return argparse.Namespace(**modules)


def common_arguments(parser):
    """Adds the server address, the API key, the update count and the deadline."""
    parser.add_argument("server", help="ibstream server address, e.g. 127.0.0.1:50051")
    parser.add_argument("--updates", type=int, default=10, help="exit after this many complete updates")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("IBSTREAM_API_KEY"),
        help="API key sent as 'authorization: Bearer <key>' (default: $IBSTREAM_API_KEY)",
    )


def metadata(api_key):
    """The call metadata: a bearer token when a key is given."""
    return [("authorization", f"Bearer {api_key}")] if api_key else []


def channel(server):
    """A plaintext channel to `host:port` (or an http:// URL as `ibstream` takes it)."""
    for scheme in ("http://", "https://"):
        if server.startswith(scheme):
            server = server[len(scheme):]
    return grpc.insecure_channel(server)


def market_data(server):
    """The generated market_data_pb2 module and a MarketDataService stub for `server`."""
    pb = generate()
    return pb.market_data_pb2, pb.market_data_pb2_grpc.MarketDataServiceStub(channel(server))


def follow(stub, method, request, args, on_message, ended):
    """Opens the server stream `method` and hands each message to `on_message` until it
    returns an exit status.

    A failed call exits 1 with gRPC's code and details; a stream that ends first exits 1
    with `ended()` as the reason (called then, so it can tell how far the stream got).
    """
    try:
        for message in getattr(stub, method)(request, timeout=args.timeout, metadata=metadata(args.api_key)):
            status = on_message(message)
            if status is not None:
                return status
    except grpc.RpcError as err:
        print(f"error: {method} failed: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    print(f"error: {ended()}", file=sys.stderr)
    return 1


def fmt(message, field, pattern="{:.2f}"):
    """A proto3 optional field formatted, or '-' when absent."""
    return pattern.format(getattr(message, field)) if message.HasField(field) else "-"
