"""The migrations and `tables.py` describe the same schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from openkms.repository.migrate import upgrade_to_head
from openkms.repository.tables import metadata


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_matches_tables(tmp_path: Path) -> None:
    assert _differences(f"sqlite:///{tmp_path / 'schema.db'}") == []


@pytest.mark.usefixtures("postgres_url")
def test_postgres_schema_matches_tables() -> None:
    from tests.conftest import new_postgres_database

    assert _differences(new_postgres_database()) == []
