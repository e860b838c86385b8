"""KEK rotation: retired keyring terms and the rewrap's progress.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyring_retired_terms",
        sa.Column("term", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "keyring_rewrap",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("rewrapped", sa.BigInteger(), nullable=False),
        sa.Column("last_batch_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute("INSERT INTO keyring_rewrap (id, term, rewrapped) VALUES (1, 0, 0)")


def downgrade() -> None:
    op.drop_table("keyring_rewrap")
    op.drop_table("keyring_retired_terms")
