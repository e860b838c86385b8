"""`openkms restore`: an archive brought up as a fresh node, on SQLite or PostgreSQL.

Owns the checks before anything is written (the root opens the archive, the schema revision is
known, the data dir and the database hold no store) and the all-or-nothing load: the database in
one transaction (SQLite: a new file under a temporary name, renamed when complete), the files staged
in the data dir and moved into place only after the database committed. A damaged or truncated
archive, or any other failure, leaves the data dir and the database as they were.

Node-local tables are not loaded (`NODE_LOCAL_TABLES`): the sealed heads of the source's audit files
(the restored node starts its own chain) and the leases (the jobs leader of the source). Audit files,
when archived, go to `audit-restored/` (never into `audit/`, whose chain is the new node's). Never
logs or prints a row, a file's content, the root key or the passphrase.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from openkms.repository.backup import BATCH_ROWS, Loader, known_revisions, load, store_tables
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.backup.archive import ArchiveReader, ArchiveRefused, Header, read_header
from openkms.service.backup.progress import Progress
from openkms.service.backup.roots import restore_root
from openkms.service.seal import KDF_PARAMS_FILE, KEY_FILE

NODE_LOCAL_TABLES: Final = frozenset({"audit_heads", "leases"})
CONFIG_FILE: Final = "openkms.toml"  # where an archived configuration file is restored
RESTORED_AUDIT: Final = "audit-restored"
SQLITE_FILE: Final = "openkms.db"
_STAGING: Final = ".restore-staging"
# What a new data dir may already hold: the root of trust the operator brought.
_ALLOWED_IN_DATA_DIR: Final = frozenset({KEY_FILE, KDF_PARAMS_FILE})


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    header: Header
    tables: int
    rows: int
    skipped_tables: tuple[str, ...]
    config_file: Path | None
    audit_files: int


@dataclass(frozen=True, slots=True)
class Target:
    data_dir: Path
    database_url: str | None  # None: SQLite in the data dir


def inspect_archive(archive: Path) -> Header:
    """The archive's header (readable without the root of trust)."""
    with _open(archive) as source:
        header, _digest = read_header(source)
    return header


def restore_backup(
    archive: Path,
    target: Target,
    *,
    passphrase: str | None,
    root_key_file: Path | None,
    progress: Progress,
) -> RestoreSummary:
    header = inspect_archive(archive)
    root_key = restore_root(header, target.data_dir, passphrase, root_key_file)
    with _open(archive) as source:
        reader = ArchiveReader(source, root_key)  # refuses a wrong root before anything is written
        _check_revision(header)
        url = target.database_url or f"sqlite:///{(target.data_dir / SQLITE_FILE).resolve()}"
        _check_target(target.data_dir, url)
        created_dir = not target.data_dir.exists()
        target.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = target.data_dir / _STAGING
        sqlite_path = _sqlite_path(url)
        loading_url = url if sqlite_path is None else f"sqlite:///{_loading_path(sqlite_path)}"
        try:
            staging.mkdir(mode=0o700)
            if sqlite_path is not None:
                _create_private(_loading_path(sqlite_path))
            db = Database(loading_url)
            try:
                with load(db) as loader:
                    loaded = _load(reader, header, loader, staging, progress)
                if sqlite_path is not None:
                    _settle_sqlite(db)
            finally:
                db.dispose()
            if sqlite_path is not None:
                os.rename(_loading_path(sqlite_path), sqlite_path)
        except SQLAlchemyError as exc:
            _undo(staging, sqlite_path, target.data_dir if created_dir else None)
            raise ArchiveRefused(f"the database refused the restore: {_first_line(exc)}") from None
        except OSError as exc:
            _undo(staging, sqlite_path, target.data_dir if created_dir else None)
            raise ArchiveRefused(
                f"cannot write the restored node ({exc.strerror or type(exc).__name__})"
            ) from None
        except BaseException:
            _undo(staging, sqlite_path, target.data_dir if created_dir else None)
            raise
    config_file = _place_files(target.data_dir, staging, header, root_key, root_key_file)
    return RestoreSummary(
        header,
        len(loaded.rows),
        sum(loaded.rows.values()),
        tuple(sorted(NODE_LOCAL_TABLES & set(header.tables))),
        config_file,
        loaded.audit_files,
    )


@contextlib.contextmanager
def _open(archive: Path) -> Iterator[BinaryIO]:
    try:
        source: BinaryIO = archive.open("rb")
    except OSError as exc:
        raise ArchiveRefused(f"cannot open the archive ({exc.strerror})") from None
    with source:
        yield source


def _undo(staging: Path, sqlite_path: Path | None, created_dir: Path | None) -> None:
    """What a failed restore wrote goes again: staged files, the half-loaded SQLite file, the data
    dir if this restore made it."""
    shutil.rmtree(staging, ignore_errors=True)
    if sqlite_path is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{_loading_path(sqlite_path)}{suffix}")
    if created_dir is not None:
        shutil.rmtree(created_dir, ignore_errors=True)


def _first_line(error: SQLAlchemyError) -> str:
    """The driver's own first line (engines hide parameters, so no row value is in it)."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _check_revision(header: Header) -> None:
    if header.schema_revision not in known_revisions():
        raise ArchiveRefused(
            f"the archive's schema ({header.schema_revision}) is newer than this OpenKMS knows: "
            "restore it with the OpenKMS that made it, or a newer one"
        )


def _check_target(data_dir: Path, url: str) -> None:
    """Refuse a data dir or database that already holds a store (nothing is ever overwritten)."""
    if data_dir.exists():
        if not data_dir.is_dir():
            raise ArchiveRefused(f"{data_dir} is not a folder")
        extra = sorted(entry.name for entry in data_dir.iterdir() if entry.name not in _ALLOWED_IN_DATA_DIR)
        if extra:
            raise ArchiveRefused(
                f"the data dir {data_dir} is not new (it holds {', '.join(extra[:5])}): "
                "restore into a new folder (it may hold only the root key file or seal.json)"
            )
    sqlite_path = _sqlite_path(url)
    if sqlite_path is not None:
        for path in (sqlite_path, _loading_path(sqlite_path)):
            if path.exists():
                raise ArchiveRefused(f"the SQLite file {path} exists: restore into a new one")
        return
    try:
        db = Database(url)
    except (SQLAlchemyError, ImportError):
        raise ArchiveRefused("--database-url names no database this OpenKMS can use") from None
    try:
        present = store_tables(db)
    except SQLAlchemyError as exc:
        raise ArchiveRefused(f"cannot reach the database: {_first_line(exc)}") from None
    finally:
        db.dispose()
    if present:
        raise ArchiveRefused(
            f"the database already holds an OpenKMS store ({len(present)} of its tables): "
            "restore into a new, empty database"
        )


def _sqlite_path(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ArchiveRefused("--database-url is not a database URL") from None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ArchiveRefused("restore needs a SQLite file, not an in-memory database")
    return Path(str(parsed.database))


def _loading_path(sqlite_path: Path) -> Path:
    return sqlite_path.with_name(sqlite_path.name + ".restoring")


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))


def _settle_sqlite(db: Database) -> None:
    """Everything in the main file, no WAL left behind, before the file is renamed (outside any
    transaction: the raw connection is in autocommit)."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("PRAGMA journal_mode=DELETE")
        cursor.close()
    finally:
        raw.close()


@dataclass(slots=True)
class _Loaded:
    rows: dict[str, int]
    audit_files: int


def _load(
    reader: ArchiveReader, header: Header, loader: Loader, staging: Path, progress: Progress
) -> _Loaded:
    _check_tables(header, loader)
    loader.create_schema(
        header.schema_revision, [name for name in header.tables if name not in NODE_LOCAL_TABLES]
    )
    loaded = _Loaded({}, 0)
    table: str | None = None
    columns: list[str] = []
    file: BinaryIO | None = None
    pending: list[list[Any]] = []
    ended: dict[str, Any] | None = None

    def flush() -> None:
        progress.advance(len(pending))
        if pending and table is not None and table not in NODE_LOCAL_TABLES:
            loader.insert(table, columns, pending)
        pending.clear()

    try:
        for item in reader.items():
            kind = item[0]
            if ended is not None:
                raise ArchiveRefused("the archive holds items after its end")
            if kind == "table":
                flush()
                table, columns = _table_item(item, header, loaded)
                progress.step(table, None)
            elif kind == "row" and table is not None and len(item) == 2 and isinstance(item[1], list):
                pending.append(item[1])
                loaded.rows[table] += 1
                if len(pending) >= BATCH_ROWS:
                    flush()
            elif kind == "file" and len(item) == 3:
                flush()
                table = None
                if file is not None:
                    file.close()
                file = _staged_file(staging, item, loaded, progress)
            elif kind == "data" and file is not None and len(item) == 2 and isinstance(item[1], bytes):
                file.write(item[1])
                progress.advance(len(item[1]))
            elif kind == "end" and len(item) == 2 and isinstance(item[1], dict):
                flush()
                ended = item[1]
            else:
                raise ArchiveRefused("the archive holds an item this OpenKMS does not read")
    finally:
        if file is not None:
            file.close()
    if ended is None:
        raise ArchiveRefused("the archive has no end record (it is damaged)")
    if ended.get("rows") != loaded.rows or ended.get("files") != _staged_count(staging):
        raise ArchiveRefused("the archive's contents do not match its end record (it is damaged)")
    loader.finish(list(loaded.rows))
    return loaded


def _check_tables(header: Header, loader: Loader) -> None:
    """Every table is known here, and parents come before their children."""
    known = loader.table_names()
    unknown = [name for name in header.tables if name not in known]
    if unknown:
        raise ArchiveRefused(f"the archive holds tables this OpenKMS does not know: {', '.join(unknown)}")
    seen: set[str] = set()
    for name in header.tables:
        if not loader.parents_of(name) & set(header.tables) <= seen:
            raise ArchiveRefused(f"the archive lists table {name} before a table it refers to")
        seen.add(name)


def _table_item(item: list[Any], header: Header, loaded: _Loaded) -> tuple[str, list[str]]:
    if len(item) != 3 or item[1] not in header.tables or item[1] in loaded.rows:
        raise ArchiveRefused("the archive's tables do not match its header (it is damaged)")
    loaded.rows[item[1]] = 0
    return str(item[1]), [str(column) for column in item[2]]


def _staged_file(staging: Path, item: list[Any], loaded: _Loaded, progress: Progress) -> BinaryIO:
    kind, name = item[1], item[2]
    if kind not in ("config", "audit") or not isinstance(name, str) or Path(name).name != name or not name:
        raise ArchiveRefused("the archive names a file this OpenKMS does not restore")
    folder = staging / kind
    folder.mkdir(exist_ok=True, mode=0o700)
    if kind == "config" and any(folder.iterdir()):
        raise ArchiveRefused("the archive holds more than one configuration file")
    loaded.audit_files += kind == "audit"
    progress.step(name, None)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    return os.fdopen(fd, "wb")


def _staged_count(staging: Path) -> int:
    return sum(1 for folder in staging.iterdir() for _ in folder.iterdir()) if staging.exists() else 0


def _place_files(
    data_dir: Path, staging: Path, header: Header, root_key: SecretBytes, root_key_file: Path | None
) -> Path | None:
    """After the database committed: the files into place, and the root of trust's files."""
    config_file = None
    configs = sorted((staging / "config").glob("*")) if (staging / "config").exists() else []
    for path in configs:
        config_file = data_dir / CONFIG_FILE
        os.rename(path, config_file)
    audits = staging / "audit"
    if audits.exists():
        os.rename(audits, data_dir / RESTORED_AUDIT)
    shutil.rmtree(staging, ignore_errors=True)
    if header.seal == "keyfile" and root_key_file is not None and not (data_dir / KEY_FILE).exists():
        _write_private(data_dir / KEY_FILE, root_key.reveal())
    if header.seal == "passphrase" and not (data_dir / KDF_PARAMS_FILE).exists():
        _write_private(
            data_dir / KDF_PARAMS_FILE, orjson.dumps(header.seal_params, option=orjson.OPT_INDENT_2)
        )
    return config_file


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
