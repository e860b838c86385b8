"""The instance API's generated message module is what protoc makes of our own .proto today: the
committed kms_instance_pb2.py(i) are regenerated here and compared, so an edit of one without the other
fails. (grpcio-tools carries protoc; mypy-protobuf writes the .pyi.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openkms.api.instance import kms_instance_pb2 as pb

SRC = Path(__file__).resolve().parents[2] / "src"
PROTO = Path("openkms/api/instance/kms_instance.proto")


def test_the_committed_module_is_generated_from_the_proto(tmp_path: Path) -> None:
    plugin = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    if plugin is None:
        pytest.fail("mypy-protobuf is a test dependency: protoc-gen-mypy should be in the venv")
    target = tmp_path / PROTO.parent
    target.mkdir(parents=True)
    (tmp_path / PROTO).write_bytes((SRC / PROTO).read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
         f"--mypy_out={tmp_path}", str(PROTO)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PATH": f"{Path(plugin).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("kms_instance_pb2.py", "kms_instance_pb2.pyi"):
        assert (target / name).read_text() == (SRC / PROTO.parent / name).read_text(), name


def test_field_numbers_are_the_sdks() -> None:
    """A few of the numbers the SDKs use (alibaba-api-coverage.md 5.1), spelled out."""
    fields = {
        (message, field.name): field.number
        for message in ("AdvanceEncryptResponse", "DecryptRequest", "VerifyRequest", "Error")
        for field in pb.DESCRIPTOR.message_types_by_name[message].fields
    }
    assert fields[("AdvanceEncryptResponse", "KeyVersionId")] == 7
    assert fields[("DecryptRequest", "CiphertextBlob")] == 1 and fields[("DecryptRequest", "KeyId")] == 2
    assert fields[("VerifyRequest", "MessageType")] == 6 and fields[("VerifyRequest", "Signature")] == 3
    assert fields[("Error", "ErrorCode")] == 2
    assert pb.DESCRIPTOR.package == "protobuf"
