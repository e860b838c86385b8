"""Alembic environment: runs migrations on the connection the caller hands over (see repository.migrate)."""

from __future__ import annotations

from alembic import context

from openkms.repository.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through openkms.repository.migrate")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
