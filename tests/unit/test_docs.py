"""The error reference names every code the wire table can produce."""

from __future__ import annotations

from pathlib import Path

from openkms.api.wire_errors import WIRE_ERRORS


def test_every_wire_code_is_documented() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    for _status, code in WIRE_ERRORS.values():
        assert f"`{code}`" in reference, code
