"""`openkms backup`: one consistent, encrypted archive of a store while its server runs.

Owns what goes into an archive and in which order: every table of the schema from one snapshot
(parents before children), the configuration file when one is named, and the audit files when asked
(each up to its last complete record). The file is written under a temporary name with mode 0600,
synced, then linked to its name (an existing archive is never replaced). Never writes the root key,
the passphrase or anything unwrapped into it: the rows hold material wrapped as the store holds it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from sqlalchemy.exc import SQLAlchemyError

from openkms.clock import Clock
from openkms.repository.backup import head_revision, snapshot
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.backup.archive import ArchiveRefused, ArchiveWriter
from openkms.service.backup.progress import Progress

FILE_PIECE: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    schema_revision: str
    tables: int
    rows: int
    files: int
    size: int


@dataclass(frozen=True, slots=True)
class Source:
    """What to back up besides the database: the root's kind and KDF parameters, optional files."""

    seal: str
    seal_params: dict[str, Any] | None
    config_file: Path | None
    audit_dir: Path | None  # None: the audit files stay out


def take_backup(
    db: Database, root_key: SecretBytes, source: Source, destination: Path, clock: Clock, progress: Progress
) -> BackupSummary:
    """Write the archive to `destination` (which must not exist)."""
    if destination.exists():
        raise ArchiveRefused(f"{destination} exists; give the archive a new name")
    try:
        return _take(db, root_key, source, destination, clock, progress)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ArchiveRefused(f"the database failed during the backup: {first}") from None
    except OSError as exc:
        raise ArchiveRefused(f"cannot write the archive ({exc.strerror or type(exc).__name__})") from None


def _take(
    db: Database, root_key: SecretBytes, source: Source, destination: Path, clock: Clock, progress: Progress
) -> BackupSummary:
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            revision, counts, files = _write(db, root_key, source, out, clock, progress)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, destination)
        except FileExistsError:
            raise ArchiveRefused(f"{destination} exists; give the archive a new name") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    size = destination.stat().st_size
    return BackupSummary(destination, revision, len(counts), sum(counts.values()), files, size)


def _write(
    db: Database,
    root_key: SecretBytes,
    source: Source,
    out: BinaryIO,
    clock: Clock,
    progress: Progress,
) -> tuple[str, dict[str, int], int]:
    """Revision, rows per table and the number of files written."""
    with snapshot(db) as view:
        revision = view.revision
        if revision is None or revision != head_revision():
            raise ArchiveRefused(
                f"the database's schema ({view.revision}) is not this OpenKMS's ({head_revision()}): "
                "back it up with the OpenKMS that serves it, or run `openkms migrate` first"
            )
        writer = ArchiveWriter(
            out,
            root_key,
            {
                "created_at": clock.now().isoformat(),
                "schema_revision": revision,
                "source_dialect": "sqlite" if db.is_sqlite else "postgresql",
                "tables": tuple(table.name for table in view.tables),
                "seal": source.seal,
                "seal_params": source.seal_params,
                "with_config": source.config_file is not None,
                "with_audit": source.audit_dir is not None,
            },
        )
        counts: dict[str, int] = {}
        for table in view.tables:
            progress.step(table.name, view.count(table))
            writer.item("table", table.name, [column.name for column in table.columns])
            counts[table.name] = 0
            for batch in view.rows(table):
                writer.rows(batch)
                counts[table.name] += len(batch)
                progress.advance(len(batch))
    files = 0
    if source.config_file is not None:
        _add_file(writer, "config", source.config_file, whole=True, progress=progress)
        files += 1
    if source.audit_dir is not None and source.audit_dir.is_dir():
        for path in sorted(source.audit_dir.glob("*.jsonl")):
            _add_file(writer, "audit", path, whole=False, progress=progress)
            files += 1
    writer.item("end", {"rows": counts, "files": files})
    writer.close()
    return revision, counts, files


def _add_file(writer: ArchiveWriter, kind: str, path: Path, *, whole: bool, progress: Progress) -> None:
    """The file streamed in pieces; an audit file (`whole` False) only up to its last complete
    record, as the server may be appending to it right now."""
    with path.open("rb") as content:
        length = os.fstat(content.fileno()).st_size
        if not whole:
            length = _end_of_last_line(content, length)
        progress.step(path.name, length)
        writer.item("file", kind, path.name)
        content.seek(0)
        left = length
        while left > 0:
            piece = content.read(min(FILE_PIECE, left))
            if not piece:
                raise ArchiveRefused(f"{path.name} became shorter while it was read")
            writer.item("data", piece)
            left -= len(piece)
            progress.advance(len(piece))


def _end_of_last_line(content: BinaryIO, length: int) -> int:
    end = length
    while end > 0:
        start = max(0, end - FILE_PIECE)
        content.seek(start)
        block = content.read(end - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0
