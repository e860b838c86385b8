"""`openkms serve` and its node memory in /dev/shm, with real servers: a clean stop leaves nothing, a
folder left by a killed server whose data dir is gone is swept by the next server to start, and a
running server's folder is never touched by another one starting. Also: "listening" only once the
address is bound, and the key-file warning once per command however many workers there are."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from openkms.service.replay import NONCE_FILE, node_memory_dir
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

pytestmark = pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm")

KEY_FILE_WARNING = "The key-file root of trust keeps the root key next to the data it protects"


def _answers(server: LiveServer) -> bool:
    caller = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    return bool(caller.call("DescribeRegions")["Regions"]["Region"])


def test_a_clean_stop_leaves_no_shared_memory(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", workers=2).start()
    memory = node_memory_dir(server.data_dir)
    try:
        assert (memory / NONCE_FILE).exists() and _answers(server)
    finally:
        server.stop()
    assert not memory.exists()
    assert "removed" in server.log()
    # One command, one key-file warning: not one more per worker.
    assert server.log().count(KEY_FILE_WARNING) == 1


def test_a_killed_servers_memory_is_swept_once_its_data_dir_is_gone(tmp_path: Path) -> None:
    killed = LiveServer(tmp_path / "killed").start()
    left = node_memory_dir(killed.data_dir)
    assert killed.process is not None
    killed.process.kill()  # no clean stop: the folder stays behind
    killed.process.wait()
    assert (left / NONCE_FILE).exists()
    shutil.rmtree(killed.data_dir)
    later = LiveServer(tmp_path / "later").start()
    try:
        assert not left.exists()
        assert f"removed stale node memory {left}" in later.log()
        assert str(killed.data_dir.resolve()) in later.log()
    finally:
        later.stop()


def test_a_running_servers_memory_is_never_touched_by_another_start(tmp_path: Path) -> None:
    running = LiveServer(tmp_path / "running").start()
    memory = node_memory_dir(running.data_dir)
    inode = (memory / NONCE_FILE).stat().st_ino
    try:
        other = LiveServer(tmp_path / "other").start()
        other.stop()
        assert (memory / NONCE_FILE).stat().st_ino == inode
        assert str(memory) not in other.log()
        assert _answers(running)
    finally:
        running.stop()
    assert not memory.exists()


def test_listening_is_said_only_after_the_bind(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "OPENKMS_ROOT_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OPENKMS_ROOT_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
            "OPENKMS_NONCE_SLOTS": "65536",
        }
        data_dir = tmp_path / "data"
        result = subprocess.run(
            [sys.executable, "-m", "openkms.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "OpenKMS listening on" not in output
    assert "Traceback" not in output
    assert not _memory_path(data_dir).exists()


def _memory_path(data_dir: Path) -> Path:
    """Where `node_memory_dir` puts a data dir's folder, without making it as that function does."""
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path("/dev/shm") / f"openkms-{tag}"
