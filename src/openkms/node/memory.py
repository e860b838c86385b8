"""Who holds a node's shared-memory folder (`/dev/shm/openkms-<hash of the data dir>`: the replay
cache, the rate-limit table, the metrics files), and removing it once nobody does.

`openkms serve` (the supervisor) holds the folder's `lease` file with a shared flock from before any
of its processes attaches until every worker has exited (`NodeMemoryLease`); on a clean stop it
removes the folder unless another server still holds it. At start, `sweep` removes every other
folder of this user that nobody holds: one left by a server that crashed or was killed, or whose
data dir was deleted (a restart refills the replay cache from the audit log, so nothing is lost).

Never removes a folder in use: a sweeper takes the lease exclusively (a server holding it shared
makes that fail) and also checks that no process is attached to a table file (the shared record
lock every attached process holds on byte 0, see `shared_file.py`), which covers servers of older
versions that took no lease; a folder of an older version (no owner file) is also left alone while
it changed in the last minute. A starting server that finds its lease file unlinked under it by a
sweeper makes the folder again. The flocks are released by the kernel when a process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import time
from pathlib import Path

LEASE_FILE = "lease"
OWNER_FILE = "data-dir"  # the data dir the folder belongs to, for the operator's eyes
PREFIX = "openkms-"
_ATTEMPTS = 20
LEGACY_GRACE_SECONDS = 60.0


class NodeMemoryLease:
    """A server's hold on its node-memory folder (shared: several servers on one data dir may hold
    it at once; the last one to stop removes it)."""

    def __init__(
        self, directory: Path, data_dir: Path, *, owned_names: tuple[str, ...] | None = None
    ) -> None:
        """`owned_names`: when the folder is not the server's own (the data dir's run/ folder, used
        when /dev/shm is missing), the entries to remove at a clean stop instead of the folder."""
        self.directory = directory
        self._data_dir = data_dir.resolve()
        self._owned = owned_names
        self._fd = -1

    def acquire(self) -> None:
        for _ in range(_ATTEMPTS):
            self.directory.mkdir(mode=0o700, parents=self._owned is not None, exist_ok=True)
            try:
                fd = os.open(self.directory / LEASE_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # a sweeper removed the folder between our mkdir and open
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a sweeper decides about this folder
            if _names(self.directory / LEASE_FILE, os.fstat(fd).st_ino):
                self._fd = fd
                _write_owner(self.directory, self._data_dir)
                return
            os.close(fd)  # the sweeper removed the folder under us: make it again
        raise OSError(f"could not hold the node memory folder {self.directory}")

    def release(self, *, remove: bool) -> bool:
        """Let go; with `remove`, first delete the folder if no other server holds it and nothing is
        attached to its tables. True if it was removed."""
        if self._fd < 0:
            return False
        removed = False
        try:
            if remove and _take_exclusive(self._fd) and not _attached(self.directory):
                self._remove()
                removed = True
        finally:
            os.close(self._fd)
            self._fd = -1
        return removed

    def _remove(self) -> None:
        if self._owned is None:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for name in (*self._owned, LEASE_FILE, OWNER_FILE):
            path = self.directory / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def __enter__(self) -> NodeMemoryLease:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release(remove=True)


def sweep(
    root: Path, *, keep: Path | None = None, legacy_grace_seconds: float = LEGACY_GRACE_SECONDS
) -> list[tuple[Path, str | None]]:
    """Remove the node-memory folders under `root` that belong to this user and that nobody holds or
    uses (skipping `keep`); the folders removed, each with the data dir it was made for.

    A folder without an owner file was made by an older version, whose server holds no lease: it is
    left alone while anything in it changed in the last `legacy_grace_seconds` (such a server lets go
    of its table between its replay-cache rebuild and its workers' start)."""
    removed: list[tuple[Path, str | None]] = []
    now = time.time()
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith(PREFIX) or (keep is not None and folder == keep):
            continue
        if not _private_folder(folder):
            continue  # another user's, or not a folder we would have made
        owner = owner_of(folder)
        if owner is None and _last_change(folder) > now - legacy_grace_seconds:
            continue
        with contextlib.suppress(OSError):
            if _sweep_one(folder):
                removed.append((folder, owner))
    return removed


def _sweep_one(folder: Path) -> bool:
    fd = os.open(folder / LEASE_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not _take_exclusive(fd) or _attached(folder):
            return False
        shutil.rmtree(folder, ignore_errors=True)  # a starter waiting on the lease sees it unlinked
        return True
    finally:
        os.close(fd)


def _last_change(folder: Path) -> float:
    try:
        return max([folder.stat().st_mtime, *(entry.stat().st_mtime for entry in folder.iterdir())])
    except OSError:
        return time.time()


def owner_of(folder: Path) -> str | None:
    """The data dir a folder was made for, as its server wrote it (None if unknown)."""
    try:
        return (folder / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _take_exclusive(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _attached(folder: Path) -> bool:
    """Whether any process holds the attach lock of a table file in the folder. Run by a process that
    is not attached to them itself (POSIX record locks: our own lock never conflicts with us, and
    closing the probe's descriptor drops this process's locks on the file)."""
    for path in folder.glob("*.shm"):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        except OSError:
            return True
        finally:
            os.close(fd)
    return False


def _private_folder(path: Path) -> bool:
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o077


def _names(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except FileNotFoundError:
        return False


def _write_owner(folder: Path, data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        tmp = folder / f".{OWNER_FILE}.{os.getpid()}"
        tmp.write_text(f"{data_dir}\n", encoding="utf-8")
        tmp.replace(folder / OWNER_FILE)
