"""The node-memory lease and sweep (node/memory.py) on real files and locks: a folder nobody holds
is swept, one a server holds or a process is attached to is never touched, a clean stop removes the
folder unless another server still holds it, and a starter whose folder was swept makes it again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.node.memory import LEASE_FILE, OWNER_FILE, NodeMemoryLease, owner_of, sweep
from openkms.node.nonces import SharedNonceStore


def folder(root: Path, name: str) -> Path:
    path = root / f"openkms-{name}"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def attached_elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A replay table that another process is attached to (holds its attach lock) until the end."""
    table = folder(tmp_path, "attached") / "nonces.shm"
    code = (
        "import sys; from pathlib import Path; from openkms.node.nonces import SharedNonceStore\n"
        f"store = SharedNonceStore(Path({str(table)!r}), slots=4096)\n"
        "print('attached', flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "attached"
    yield table.parent
    assert process.stdin is not None
    process.stdin.close()
    process.wait(30)
    process.stdout.close()


def test_a_folder_nobody_holds_is_swept_with_its_tables(tmp_path: Path) -> None:
    stale = folder(tmp_path, "stale")
    with SharedNonceStore(stale / "nonces.shm", slots=4096):
        pass  # made and let go, as by a server that was killed
    (stale / OWNER_FILE).write_text("/gone/data\n")
    assert sweep(tmp_path) == [(stale, "/gone/data")]
    assert not stale.exists()


def test_a_held_folder_is_never_swept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lease = NodeMemoryLease(tmp_path / "openkms-held", data_dir)
    lease.acquire()
    try:
        assert owner_of(lease.directory) == str(data_dir.resolve())
        assert sweep(tmp_path) == []
        assert (lease.directory / LEASE_FILE).exists()
    finally:
        assert lease.release(remove=True)
    assert not lease.directory.exists()


def test_a_folder_another_process_is_attached_to_is_never_swept(attached_elsewhere: Path) -> None:
    # No lease at all (a server of an older version): the attach lock alone protects it.
    assert sweep(attached_elsewhere.parent, legacy_grace_seconds=0) == []
    assert (attached_elsewhere / "nonces.shm").exists()


def test_the_last_server_to_stop_removes_the_folder(tmp_path: Path) -> None:
    first = NodeMemoryLease(tmp_path / "openkms-shared", tmp_path / "data")
    second = NodeMemoryLease(tmp_path / "openkms-shared", tmp_path / "data")
    first.acquire()
    second.acquire()
    assert not first.release(remove=True)  # the other one still holds it
    assert first.directory.exists()
    assert second.release(remove=True)
    assert not second.directory.exists()


def test_a_clean_stop_keeps_a_folder_a_process_is_still_attached_to(attached_elsewhere: Path) -> None:
    lease = NodeMemoryLease(attached_elsewhere, Path("/data"))
    lease.acquire()
    assert not lease.release(remove=True)
    assert (attached_elsewhere / "nonces.shm").exists()


def test_a_starter_makes_its_folder_again_after_a_sweep(tmp_path: Path) -> None:
    directory = folder(tmp_path, "again")
    # No owner written: a folder of an older version, swept only once it has been quiet for a while.
    assert sweep(tmp_path) == []
    assert sweep(tmp_path, legacy_grace_seconds=0) == [(directory, None)]
    lease = NodeMemoryLease(directory, tmp_path / "data")
    lease.acquire()
    try:
        assert (directory / LEASE_FILE).exists()
    finally:
        lease.release(remove=True)


def test_other_folders_are_left_alone(tmp_path: Path) -> None:
    open_to_all = folder(tmp_path, "wide")
    open_to_all.chmod(0o755)  # not a folder OpenKMS makes (0700): someone else's
    unrelated = tmp_path / "not-ours"
    unrelated.mkdir(mode=0o700)
    keep = folder(tmp_path, "keep")
    assert sweep(tmp_path, keep=keep, legacy_grace_seconds=0) == []
    assert open_to_all.exists() and unrelated.exists() and keep.exists()


def test_outside_shm_only_the_node_files_are_removed(tmp_path: Path) -> None:
    run = tmp_path / "data" / "run"
    lease = NodeMemoryLease(run, tmp_path / "data", owned_names=("nonces.shm", "metrics"))
    lease.acquire()
    with SharedNonceStore(run / "nonces.shm", slots=4096):
        pass
    (run / "metrics").mkdir()
    (run / "generation.shm").write_bytes(b"other run files stay")
    assert lease.release(remove=True)
    assert sorted(path.name for path in run.iterdir()) == ["generation.shm"]
