"""Leadership for the job runner: exactly one process per database runs the jobs.

PostgreSQL: a session advisory lock held on a dedicated connection (several nodes may share the
database; whoever holds the lock runs the jobs, and a crashed holder's lock dies with its session).
SQLite: an exclusive file lock next to the database file (a SQLite database lives on one node, so
this elects one process among the node's workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

# Arbitrary constant naming "the OpenKMS job runner" among advisory locks.
ADVISORY_LOCK_ID = 0x4F4B4D534A4F4253  # "OKMSJOBS"


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """True when this process holds the lock (already or now)."""
        ...

    def release(self) -> None: ...


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLeaderLock:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        if self._connection is not None:
            try:
                # Still ours only while the session lives.
                self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                self._drop()
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID}
            ).scalar_one()
        except Exception:
            connection.close()
            raise
        if held:
            self._connection = connection
            return True
        connection.close()
        return False

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
            self._drop()
