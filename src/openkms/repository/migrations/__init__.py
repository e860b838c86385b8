"""Alembic migrations of the OpenKMS schema."""
