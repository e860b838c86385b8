"""Rebuilding the replay cache from audit records, and where the node keeps it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openkms.node.nonces import MemoryNonceStore
from openkms.service.replay import node_memory_dir, rebuild_replay_cache

NOW = 1_800_000_000.0


def _record(nonce: str | None, expires: int | None, key: str = "LTAIk") -> str:
    return json.dumps(
        {
            "action": "Encrypt",
            "access_key_id": key if nonce else None,
            "nonce": nonce,
            "nonce_expires": expires,
        },
        separators=(",", ":"),
    )


def test_live_nonces_come_back_and_expired_ones_do_not(tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    lines = [
        _record("live", int(NOW) + 60),
        _record("expired", int(NOW) - 1),
        _record(None, None),
        _record("other-key", int(NOW) + 60, key="LTAIo"),
        '{"torn":',
    ]
    (audit / "audit-1.jsonl").write_text("\n".join(lines))
    os.utime(audit / "audit-1.jsonl", (NOW, NOW))
    store = MemoryNonceStore()
    rebuilt = rebuild_replay_cache(store, audit, NOW, 900)
    assert (rebuilt.files, rebuilt.nonces) == (1, 2)
    assert not store.remember("LTAIk", "live", NOW + 900, NOW)
    assert not store.remember("LTAIo", "other-key", NOW + 900, NOW)
    assert store.remember("LTAIk", "expired", NOW + 900, NOW)
    assert store.remember("LTAIo", "live", NOW + 900, NOW)


def test_old_files_are_not_read(tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "old.jsonl").write_text(_record("n", int(NOW) + 60))
    os.utime(audit / "old.jsonl", (NOW - 3600, NOW - 3600))
    assert rebuild_replay_cache(MemoryNonceStore(), audit, NOW, 900).files == 0
    assert rebuild_replay_cache(MemoryNonceStore(), tmp_path / "absent", NOW, 900).files == 0


def test_node_memory_is_private(tmp_path: Path) -> None:
    directory = node_memory_dir(tmp_path)
    try:
        assert directory.stat().st_mode & 0o077 == 0
        assert node_memory_dir(tmp_path) == directory
    finally:
        directory.rmdir()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm")
def test_a_folder_someone_else_could_write_is_not_used(tmp_path: Path) -> None:
    first = node_memory_dir(tmp_path)
    first.chmod(0o777)
    try:
        assert node_memory_dir(tmp_path) == tmp_path / "run"
    finally:
        first.rmdir()
