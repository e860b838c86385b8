"""Files at rest: everything the server keeps in its data dir is its owner's alone.

Owns the process umask of the server and the CLI (0o077: every file made after it is 0600 and
every folder 0700, whoever makes it, SQLite's -wal, -shm and -journal files included), the SQLite
file made 0600 before SQLAlchemy opens it, and the tightening of a data dir that exists with wider
rights. Never loosens a mode, never follows a symbolic link, never fails a start over a mode it
cannot change: it warns instead (the operator may have shared the folder on purpose).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["PRIVATE_UMASK", "create_sqlite_file", "keep_new_files_private", "tighten_data_dir"]

log = logging.getLogger("openkms.server")

PRIVATE_UMASK = 0o077  # group and others get nothing of what this process creates


def keep_new_files_private() -> None:
    """Set the process umask to `PRIVATE_UMASK`; worker processes inherit it."""
    os.umask(PRIVATE_UMASK)


def create_sqlite_file(database_url: str) -> None:
    """Create the SQLite database file 0600 if it does not exist yet (SQLite gives its -wal, -shm
    and -journal files the mode of the database file). Only ever creates it: an existing file, or a
    symbolic link in its place, is SQLite's to open as the operator left it, read-only or linked."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return
    os.close(fd)


def tighten_data_dir(data_dir: Path) -> None:
    """Create the data dir 0700, or take group and other rights off it and everything in it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(data_dir)
    for folder, folders, files in os.walk(data_dir, followlinks=False):
        for name in (*folders, *files):
            _tighten(Path(folder) / name)


def _tighten(path: Path) -> None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return  # removed meanwhile (a worker's socket, a temporary file)
    mode = stat.S_IMODE(status.st_mode)
    if stat.S_ISLNK(status.st_mode) or not mode & 0o077:
        return
    try:
        os.chmod(path, mode & 0o700)  # not a link (checked above): the data dir is ours
    except OSError as exc:
        log.warning(
            "%s is readable or writable by others (mode %04o) and cannot be restricted (%s); "
            "make this user its owner or chmod it go-rwx",
            path,
            mode,
            exc.strerror,
        )
