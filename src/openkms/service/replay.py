"""Rebuilding a node's replay cache from the audit log.

The replay cache lives in memory shared by the node's workers (`node_memory_dir`), which a reboot
empties. Every request that spent a nonce has an audit record naming it, written before its answer,
so the nonces still inside their time window can be put back before the node serves again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import orjson

from openkms.node.nonces import NonceStore

NONCE_FILE = "nonces.shm"


def node_memory_dir(data_dir: Path) -> Path:
    """Where the workers of this node share the replay cache: a folder in /dev/shm named after the
    data dir (so its random writes never wait on disk writeback), else the data dir's run/ folder."""
    shm = Path("/dev/shm")  # noqa: S108 - ownership and mode are checked below before use
    if shm.is_dir() and os.access(shm, os.W_OK):
        tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        directory = shm / f"openkms-{tag}"
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        if _private_directory(directory):
            return directory
    # /dev/shm is missing, or someone else made the folder: the data dir is private to us.
    directory = data_dir / "run"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


def _private_directory(path: Path) -> bool:
    """A real folder (not a link), owned by this user, that nobody else can write or read."""
    status = os.lstat(path)
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o077


@dataclass(frozen=True, slots=True)
class Rebuilt:
    files: int
    nonces: int


def rebuild_replay_cache(store: NonceStore, audit_dir: Path, now: float, window: float) -> Rebuilt:
    """Put back every nonce the audit files say was spent and is still inside its time window."""
    files = nonces = 0
    if not audit_dir.is_dir():
        return Rebuilt(0, 0)
    for path in sorted(audit_dir.glob("*.jsonl")):
        # A nonce outlives its request by at most twice the window (a clock ahead by the window).
        if path.stat().st_mtime < now - 2 * window:
            continue
        files += 1
        with path.open("rb") as handle:
            for line in handle:
                if b'"nonce":null' in line:
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line: `openkms audit verify` reports it
                expires, key, nonce = (
                    record.get("nonce_expires"),
                    record.get("access_key_id"),
                    record.get("nonce"),
                )
                if (
                    isinstance(expires, int)
                    and expires > now
                    and isinstance(key, str)
                    and isinstance(nonce, str)
                ):
                    store.remember(key, nonce, float(expires), now)
                    nonces += 1
    return Rebuilt(files, nonces)
