"""Regenerate rdma_device_plugin/api/ from api.proto (grpcio-tools + mypy-protobuf).

Usage: venv/bin/python plugin_image/scripts/gen_api.py [--out-dir DIR]

Without --out-dir the committed modules are rewritten in place; the API test writes into a temporary
directory and compares bytes, so the committed code can never drift from the .proto.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

API_DIR = Path(__file__).resolve().parent.parent / "rdma_device_plugin" / "api"
PROTO = "api.proto"
GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py", "api_pb2_grpc.pyi")

# protoc emits absolute imports of the sibling module ("import api_pb2"), which only work with api/ on
# sys.path; inside the package they must be relative.
IMPORT_FIXES = {
    "api_pb2_grpc.py": ("import api_pb2 as api__pb2\n", "from . import api_pb2 as api__pb2\n"),
    "api_pb2_grpc.pyi": ("import api_pb2 as _api_pb2\n", "from . import api_pb2 as _api_pb2\n"),
}


def generate(out_dir: Path) -> list[Path]:
    """Write the four generated files into out_dir and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # The plugins are console scripts installed next to the interpreter of the venv running this script.
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--proto_path={API_DIR}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        str(API_DIR / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"gen_api: protoc failed on {API_DIR / PROTO}")
    for name, (old, new) in IMPORT_FIXES.items():
        path = out_dir / name
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"gen_api: expected exactly one {old.strip()!r} in {path}; update IMPORT_FIXES")
        path.write_text(text.replace(old, new))
    return [out_dir / name for name in GENERATED]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=API_DIR, help="where to write (default: the package)")
    for path in generate(parser.parse_args().out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
