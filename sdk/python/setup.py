"""Builds the package with the meshmind.v1 messages generated from the protocol's .proto files.

The schemas are read from MESHMIND_PROTO_DIR, else from the repository this package sits in
(../../protocols/proto); protoc comes from grpcio-tools, a build requirement.
"""

import os
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def proto_dir() -> pathlib.Path:
    found = pathlib.Path(os.environ.get("MESHMIND_PROTO_DIR", HERE.parent.parent / "protocols" / "proto"))
    if not (found / "meshmind" / "v1").is_dir():
        raise SystemExit(
            f"no meshmind/v1 schemas under {found}: build from the meshmind repository, "
            "or point MESHMIND_PROTO_DIR at its protocols/proto"
        )
    return found


class BuildWithMessages(build_py):
    """Runs protoc on every schema into the built package, beside the hand-written modules."""

    def run(self):
        super().run()
        from grpc_tools import protoc
        import grpc_tools

        source = proto_dir()
        schemas = sorted(str(p.relative_to(source)) for p in (source / "meshmind" / "v1").glob("*.proto"))
        out = pathlib.Path(self.build_lib)
        include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        code = protoc.main(
            ["protoc", f"-I{source}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}", *schemas]
        )
        if code != 0:
            raise SystemExit(f"protoc failed ({code}) on {source}")


setup(cmdclass={"build_py": BuildWithMessages})
