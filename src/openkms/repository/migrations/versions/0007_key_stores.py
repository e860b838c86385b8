"""Hardware and external key stores: an instance's settings, its sealed secret, a settings revision and
its last health check; a key's additional usages (hardware key pairs) and external key id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("settings", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("sealed_secret", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("health_ok", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("health_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("keys") as batch:
        batch.add_column(
            sa.Column("additional_usages", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("external_key_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("external_key_id")
        batch.drop_column("additional_usages")
    with op.batch_alter_table("instances") as batch:
        for column in (
            "health_checked_at",
            "health_detail",
            "health_ok",
            "revision",
            "sealed_secret",
            "settings",
        ):
            batch.drop_column(column)
