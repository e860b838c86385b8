"""The error reference names every code the wire table can produce."""

from __future__ import annotations

import re
from pathlib import Path

from openkms.api.wire_errors import WIRE_ERRORS


def test_every_wire_code_is_documented() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    for _status, code in WIRE_ERRORS.values():
        assert f"`{code}`" in reference, code


def test_architecture_names_only_what_exists() -> None:
    """docs/architecture.md is kept current: every module, package and test it names is there."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]*(?:\.py)?)`", text))
    assert named, "the page names no modules"
    missing = []
    for path in sorted(named):
        if "<" in path:
            continue
        candidates = [root / path, root / "src" / "openkms" / path]
        if not any(candidate.exists() for candidate in candidates):
            missing.append(path)
    assert not missing, missing


def test_readme_names_every_setting() -> None:
    """The README's settings and Limits tables name every setting a TOML file may hold."""
    from dataclasses import fields

    from openkms.config import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    secrets = {"root_access_key_id", "root_access_key_secret", "unseal_passphrase"}
    missing = [f.name for f in fields(Settings) if f.name not in secrets and f"`{f.name}`" not in readme]
    assert not missing, missing
