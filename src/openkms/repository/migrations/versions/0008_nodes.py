"""Several nodes on one database: the shared replay cache, the change counter nodes watch, and leases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_nonces",
        sa.Column("fingerprint", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_spent_nonces_expires_at", "spent_nonces", ["expires_at"])
    op.create_table(
        "cluster_generation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO cluster_generation (id, value) VALUES (1, 0)")
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("fence", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("cluster_generation")
    op.drop_index("ix_spent_nonces_expires_at", table_name="spent_nonces")
    op.drop_table("spent_nonces")
