"""The Alembic migrations build exactly the schema `repository/tables.py` describes (SQLite and
PostgreSQL), and the revisions downgrade."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from openkms.repository.migrate import alembic_config, upgrade_to_head
from openkms.repository.tables import metadata


def test_head_matches_the_table_definitions(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    upgrade_to_head(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_0002_downgrades_to_0001(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    upgrade_to_head(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    tables = set(inspect(engine).get_table_names())
    columns = {column["name"] for column in inspect(engine).get_columns("keys")}
    engine.dispose()
    assert "aliases" not in tables and "key_tags" not in tables
    assert "rotation_interval" not in columns and "delete_date" in columns


@pytest.mark.usefixtures("postgres_url")
def test_postgres_head_matches_the_table_definitions() -> None:
    from tests.conftest import new_postgres_database

    engine = create_engine(new_postgres_database())
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []
