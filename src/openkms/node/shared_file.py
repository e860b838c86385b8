"""A node-local file that every worker process of one server maps and shares.

Owns the create/attach race and the locks: the file appears only fully initialised (written to a
temporary file, then linked or renamed into place), a process attaches to a compatible file another
one created, and an incompatible file is replaced only when no other process is attached to it.
It never interprets the bytes past the header check; the table or counter inside belongs to the caller.

Locks, all released by the kernel when a process dies:
- `flock(LOCK_EX)` on the file serialises the callers' read-modify-write sections (`acquire`) and the
  attach/replace decision. flock belongs to the open file description, so each process opens its own
  descriptor; after a fork the child reopens the file (see `_reopen_in_child`).
- a shared POSIX record lock on byte 0 marks "this process is attached". A process that finds an
  incompatible file replaces it only if it can take that byte exclusively, that is when nobody uses it.
  (POSIX record locks are per process: two instances on one path inside one process count as one.)
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import mmap
import os
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from openkms import errors

_ATTACH_ATTEMPTS = 20


class Fit(enum.Enum):
    """How an existing file's header matches what the opener asked for."""

    EXACT = "exact"  # the format and geometry asked for: attach
    USABLE = "usable"  # a known format with another geometry: attach if others use it, else replace
    UNUSABLE = "unusable"  # unknown format, version or size: replace if nobody uses it, else refuse


class SharedFile:
    """One memory-mapped (MAP_SHARED) file plus the cross-process lock that guards it."""

    def __init__(
        self,
        path: Path,
        *,
        size: int,
        header_size: int,
        new_header: Callable[[], bytes],
        fit: Callable[[bytes, int], Fit],
    ) -> None:
        """Attach to `path`, creating or replacing it as described in the module docstring.

        `size` is the length of a new file (sparse: untouched pages cost nothing); `new_header()`
        returns its first bytes; `fit(header, file_size)` judges an existing file's first
        `header_size` bytes.
        """
        self.path = path
        self._size = size
        self._header_size = header_size
        self._new_header = new_header
        self._fit = fit
        self._thread_lock = threading.Lock()
        self._stale = False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd, self.map, self._inode = self._attach()
        _OPEN_FILES.add(self)

    def acquire(self) -> None:
        """Enter the critical section shared by every process attached to the file."""
        if self._stale:
            raise errors.Unavailable("The node state file was replaced; restart the worker.")
        self._thread_lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        if self._fd < 0:
            return
        _OPEN_FILES.discard(self)
        self.map.close()
        os.close(self._fd)
        self._fd = -1

    def _attach(self) -> tuple[int, mmap.mmap, int]:
        for _ in range(_ATTACH_ATTEMPTS):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                self._create(replace=False)
                continue
            try:
                attached = self._attach_fd(fd)
            except BaseException:
                os.close(fd)
                raise
            if attached is not None:
                return attached
            os.close(fd)
        raise errors.Unavailable("The node state file could not be attached.")

    def _attach_fd(self, fd: int) -> tuple[int, mmap.mmap, int] | None:
        """Decide under the file lock; None means "reopen the path and try again"."""
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            status = os.fstat(fd)
            if not _names(self.path, status.st_ino):
                return None  # replaced between our open and our lock
            fit = self._fit(os.pread(fd, self._header_size, 0), status.st_size)
            if fit is Fit.EXACT or (fit is Fit.USABLE and not _alone(fd)):
                fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0)
                # MAP_POPULATE maps every page now, so no request pays a page fault later.
                flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
                return fd, mmap.mmap(fd, status.st_size, flags=flags), status.st_ino
            if fit is Fit.UNUSABLE and not _alone(fd):
                raise errors.Unavailable("The node state file is in use with an incompatible format.")
            self._create(replace=True)
            return None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _create(self, *, replace: bool) -> None:
        """Write a complete new file next to the path, then put it in place atomically."""
        tmp_fd, tmp_name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            try:
                # Written out in full rather than left sparse: a first write to a hole would
                # allocate a disk block inside a page fault, on some request's path.
                zeros = bytes(1 << 20)
                for offset in range(0, self._size, len(zeros)):
                    os.pwrite(tmp_fd, zeros[: min(len(zeros), self._size - offset)], offset)
                os.pwrite(tmp_fd, self._new_header(), 0)
            finally:
                os.close(tmp_fd)
            if replace:
                os.replace(tmp_name, self.path)
            else:
                # link() fails if another process created the path first; that process won the race.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp_name, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)  # already gone after a successful replace

    def _reopen_in_child(self) -> None:
        """After fork: get a descriptor of our own, since the inherited one shares the parent's flock."""
        self._thread_lock = threading.Lock()
        if self._fd < 0:
            return
        inherited = self._fd
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            self._stale = True
            return
        if os.fstat(fd).st_ino != self._inode:
            os.close(fd)
            self._stale = True
            return
        fcntl.lockf(fd, fcntl.LOCK_SH, 1, 0)
        self._fd = fd
        os.close(inherited)


def _alone(fd: int) -> bool:
    """True if no other process is attached (takes the attach byte exclusively as a side effect)."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
    except OSError:
        return False
    return True


def _names(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except FileNotFoundError:
        return False


_OPEN_FILES: weakref.WeakSet[SharedFile] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for shared in list(_OPEN_FILES):
        shared._reopen_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
