"""Persistence: SQLAlchemy 2 Core tables, one repository per aggregate, an explicit unit of work.

The database is untrusted storage: only wrapped material and wrapped secrets reach it. Alembic owns
the schema (`migrations/`); nothing here creates tables behind its back.
"""
