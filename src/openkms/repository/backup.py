"""Every table of the schema read in one consistent snapshot, and rows written into an empty schema.

Owns the snapshot transaction (PostgreSQL: REPEATABLE READ, READ ONLY; SQLite: one deferred read
transaction, which WAL mode keeps on one snapshot while writers go on), streaming rows in batches
(never a whole table in memory), and the load of an empty database: the schema at a given revision,
rows in foreign-key order, PostgreSQL sequences moved past the loaded rows, then the newest schema.
The tables are whatever `tables.metadata` holds, never a list of its own. Knows no archive format and
no key; never logs a row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Integer, Table, delete, false, func, inspect, select, text

from openkms.repository.database import Database
from openkms.repository.migrate import alembic_config
from openkms.repository.tables import metadata

__all__ = [
    "BATCH_ROWS",
    "Loader",
    "Snapshot",
    "head_revision",
    "known_revisions",
    "load",
    "snapshot",
    "store_tables",
]

BATCH_ROWS: Final = 1000


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def store_tables(db: Database) -> list[str]:
    """The OpenKMS tables (and Alembic's version table) that already exist in the database."""
    with db.engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
    ours = {table.name for table in metadata.sorted_tables} | {"alembic_version"}
    return sorted(present & ours)


class Snapshot:
    """One read-only view of the whole database; rows of any table as of the same instant."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self.revision = _revision(connection)
        self.tables: Sequence[Table] = metadata.sorted_tables  # parents before children

    def count(self, table: Table) -> int:
        return int(self._c.execute(select(func.count()).select_from(table)).scalar_one())

    def rows(self, table: Table) -> Iterator[list[tuple[Any, ...]]]:
        """The table's rows in batches, its columns in `table.columns` order, streamed from the server."""
        result = self._c.execution_options(yield_per=BATCH_ROWS).execute(select(*table.columns))
        for batch in result.partitions():
            yield [tuple(row) for row in batch]


@contextmanager
def snapshot(db: Database) -> Iterator[Snapshot]:
    """The whole database as of one instant, while the server goes on writing."""
    if db.is_sqlite:
        with db.engine.connect() as connection:
            connection.info["openkms_write"] = False  # a deferred BEGIN: reads do not block writers
            with connection.begin():
                yield Snapshot(connection)
        return
    options: dict[str, Any] = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with db.engine.connect().execution_options(**options) as connection, connection.begin():
        yield Snapshot(connection)


class Loader:
    """Loads rows into an empty database in one transaction (`load`): nothing stays if it fails."""

    def __init__(self, connection: Connection, dialect_is_sqlite: bool) -> None:
        self._c = connection
        self._is_sqlite = dialect_is_sqlite
        self._by_name = {table.name: table for table in metadata.sorted_tables}

    def create_schema(self, revision: str, tables: Sequence[str]) -> None:
        """The schema at `revision`, with the rows its migrations seed removed from `tables` (the
        archive's rows replace them)."""
        config = alembic_config()
        config.attributes["connection"] = self._c
        command.upgrade(config, revision)
        for table in reversed(metadata.sorted_tables):
            if table.name in tables:
                self._c.execute(delete(table))

    def insert(self, name: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        table = self._by_name[name]
        self._c.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])

    def finish(self, tables: Sequence[str]) -> None:
        """Sequences of the loaded `tables` past their rows (PostgreSQL), then the newest schema."""
        if not self._is_sqlite:
            for table in metadata.sorted_tables:
                if table.name not in tables:
                    continue
                for column in table.primary_key.columns:
                    if not isinstance(column.type, Integer):
                        continue
                    sequence = self._c.execute(
                        text("SELECT pg_get_serial_sequence(:table, :column)"),
                        {"table": table.name, "column": column.name},
                    ).scalar_one_or_none()
                    if sequence is not None:
                        following = func.coalesce(func.max(column), 0) + 1
                        self._c.execute(select(func.setval(sequence, following, false())))
        config = alembic_config()
        config.attributes["connection"] = self._c
        command.upgrade(config, "head")

    def table_names(self) -> set[str]:
        return set(self._by_name)

    def parents_of(self, name: str) -> set[str]:
        """The tables `name` has foreign keys to (they must be loaded first)."""
        return {key.column.table.name for key in self._by_name[name].foreign_keys} - {name}


@contextmanager
def load(db: Database) -> Iterator[Loader]:
    """One write transaction over the whole load: committed only when the block ends cleanly."""
    with db.engine.connect() as connection:
        connection.info["openkms_write"] = True
        with connection.begin():
            yield Loader(connection, db.is_sqlite)
