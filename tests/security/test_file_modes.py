"""Files at rest: every file a real server leaves in its data dir (and in its node memory folder in
/dev/shm) is 0600 and every folder 0700, on SQLite and PostgreSQL stores; a data dir left with wider
rights is tightened at the next start; an existing SQLite file, read-only or a symbolic link, is left
as it is and does not stop a start."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.server.file_modes import create_sqlite_file, tighten_data_dir
from openkms.service.replay import node_memory_dir
from tests.conftest import new_postgres_database
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


def _everything_under(root: Path) -> Iterator[Path]:
    yield root
    for folder, folders, files in os.walk(root):
        for name in (*folders, *files):
            yield Path(folder) / name


def _wider_than_private(root: Path) -> list[str]:
    """Every path under `root` that is not a 0700 folder or a 0600 file (links are not followed)."""
    wrong = []
    for path in _everything_under(root):
        status = os.lstat(path)
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISLNK(status.st_mode):
            continue
        expected = 0o700 if stat.S_ISDIR(status.st_mode) else 0o600
        if mode != expected:
            wrong.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return wrong


def _some_requests(server: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="at rest")["CiphertextBlob"]
    kms.call("Decrypt", CiphertextBlob=blob)
    assert send(server.url, signed_params("DescribeKey", ACCESS_KEY_ID, ACCESS_KEY_SECRET, KeyId=key_id))


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_every_file_the_server_makes_is_private(tmp_path: Path, store: str) -> None:
    database_url = new_postgres_database() if store == "postgres" else None
    server = LiveServer(tmp_path / "data", database_url=database_url, extra_args=["--dev-clock"])
    server.start()
    try:
        _some_requests(server)
        made = {path.name for path in _everything_under(server.data_dir)}
        # What a running server keeps there: its audit log, its run files (and the SQLite files).
        assert "audit" in made and "run" in made
        if store == "sqlite":
            assert {"openkms.db", "openkms.db-wal"} <= made
        assert _wider_than_private(server.data_dir) == []
        assert _wider_than_private(node_memory_dir(server.data_dir)) == []
    finally:
        server.stop()
    assert _wider_than_private(server.data_dir) == []


def test_a_data_dir_with_wider_rights_is_tightened_at_start(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data")
    server.start()
    _some_requests(server)
    server.stop()
    # As an operator's copy or a careless chmod leaves it: the folders 0755, the files 0644.
    for path in _everything_under(server.data_dir):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert (server.data_dir / "openkms.db").exists()
    server.start()
    try:
        _some_requests(server)
        assert _wider_than_private(server.data_dir) == []
    finally:
        server.stop()


def test_tightening_never_loosens_and_leaves_links_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o750)
    (data_dir / "owner-only").write_text("x")
    os.chmod(data_dir / "owner-only", 0o400)
    outside = tmp_path / "outside"
    outside.write_text("y")
    os.chmod(outside, 0o644)
    (data_dir / "link").symlink_to(outside)
    tighten_data_dir(data_dir)
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data_dir / "owner-only").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644  # not ours to change


NOBODY = 65534


@contextlib.contextmanager
def _a_folder_of_an_unprivileged_user() -> Iterator[Path]:
    """A folder, and the rights of its owner, who is not root: root may write a read-only file."""
    folder = Path(tempfile.mkdtemp())  # in /tmp, which any user may cross
    try:
        if os.geteuid() != 0:
            yield folder
            return
        os.chown(folder, NOBODY, NOBODY)
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            yield folder
        finally:
            os.seteuid(0)
            os.setegid(0)
    finally:
        shutil.rmtree(folder)


def test_an_existing_read_only_database_file_is_left_as_it_is() -> None:
    with _a_folder_of_an_unprivileged_user() as folder:
        database = folder / "openkms.db"
        database.write_bytes(b"the operator's")
        os.chmod(database, 0o400)
        create_sqlite_file(f"sqlite:///{database}")
        assert database.read_bytes() == b"the operator's"
        assert stat.S_IMODE(os.stat(database).st_mode) == 0o400


@pytest.mark.parametrize("target_exists", [True, False], ids=["link", "dangling-link"])
def test_a_database_path_that_is_a_symbolic_link_is_not_followed_nor_replaced(
    tmp_path: Path, target_exists: bool
) -> None:
    target = tmp_path / "elsewhere" / "openkms.db"
    target.parent.mkdir()
    if target_exists:
        target.write_bytes(b"the operator's")
    link = tmp_path / "data" / "openkms.db"
    link.parent.mkdir()
    link.symlink_to(target)
    create_sqlite_file(f"sqlite:///{link}")
    assert link.is_symlink()
    assert target.exists() == target_exists  # not created through the link: SQLite's to make
    if target_exists:
        assert target.read_bytes() == b"the operator's"


def test_a_server_starts_on_a_symlinked_database_and_keeps_it_private(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    link = data_dir / "openkms.db"
    link.symlink_to(elsewhere / "openkms.db")
    # Named in the URL as it is (the default URL names the data dir's file resolved).
    server = LiveServer(data_dir, database_url=f"sqlite:///{link}").start()
    try:
        _some_requests(server)
        assert link.is_symlink()
        assert _wider_than_private(elsewhere) == []  # SQLite made it, under the server's umask
        assert (elsewhere / "openkms.db").stat().st_size > 0
    finally:
        server.stop()
