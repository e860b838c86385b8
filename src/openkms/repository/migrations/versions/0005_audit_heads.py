"""Sealed heads of audit files (audit_heads): the last durable record of each file, out of the log's reach.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", "file", name=op.f("pk_audit_heads")),
    )
    op.create_index("ix_audit_heads_node_slot", "audit_heads", ["node", "slot"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_heads_node_slot", table_name="audit_heads")
    op.drop_table("audit_heads")
