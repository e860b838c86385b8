"""Database.reading: the unit of work caches fill themselves from. On PostgreSQL it sends no BEGIN
or COMMIT (autocommit) and leaves the pooled connection as it found it; on SQLite it is a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from openkms.repository.blocking import WouldBlock, call_on_loop
from openkms.repository.database import Database
from tests.conftest import POSTGRES_ADMIN_URL, new_postgres_database


@pytest.fixture
def postgres() -> Iterator[str]:
    url = new_postgres_database()
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _status(connection: object) -> psycopg.pq.TransactionStatus:
    raw = connection.connection.dbapi_connection  # type: ignore[attr-defined]
    assert isinstance(raw, psycopg.Connection)
    return raw.info.transaction_status


def test_postgres_reads_run_outside_a_transaction_and_the_pool_stays_transactional(postgres: str) -> None:
    db = Database(postgres)
    try:
        with db.reading() as uow:
            assert uow.connection.exec_driver_sql("select 1").scalar() == 1
            assert _status(uow.connection) is psycopg.pq.TransactionStatus.IDLE  # no BEGIN was sent
        with db.unit_of_work() as uow:  # the same pooled connection, back in transactional mode
            uow.connection.exec_driver_sql("select 1")
            assert _status(uow.connection) is psycopg.pq.TransactionStatus.INTRANS
        assert db.engine.pool.checkedout() == 0
    finally:
        db.dispose()


def test_sqlite_reads_share_one_snapshot(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with db.reading() as uow:
            uow.connection.exec_driver_sql("select 1")
            assert uow.connection.in_transaction()
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_reading_on_the_event_loop_would_block(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("postgres") if backend == "postgres" else f"sqlite:///{tmp_path / 'store.db'}"
    )
    db = Database(url)

    def read() -> None:
        with db.reading():
            raise AssertionError("a read ran where blocking is forbidden")

    try:
        with pytest.raises(WouldBlock):
            call_on_loop(read)
    finally:
        db.dispose()
