"""Key lifecycle: rotation and deletion-protection columns on keys; aliases; key tags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(
            sa.Column("deletion_protection", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("deletion_protection_description", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("rotation_interval", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_rotation_date", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_rotation_date", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_keys_next_rotation_date"), "keys", ["next_rotation_date"], unique=False)
    op.create_index(op.f("ix_keys_state_delete_date"), "keys", ["state", "delete_date"], unique=False)
    op.create_table(
        "aliases",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("alias_name", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.key_id"], name=op.f("fk_aliases_key_id_keys")),
        sa.PrimaryKeyConstraint("account_id", "region_id", "alias_name", name=op.f("pk_aliases")),
    )
    op.create_index(op.f("ix_aliases_key_id"), "aliases", ["key_id"], unique=False)
    op.create_table(
        "key_tags",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("tag_key", sa.String(length=128), nullable=False),
        sa.Column("tag_value", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.key_id"], name=op.f("fk_key_tags_key_id_keys")),
        sa.PrimaryKeyConstraint("key_id", "tag_key", name=op.f("pk_key_tags")),
    )


def downgrade() -> None:
    op.drop_table("key_tags")
    op.drop_index(op.f("ix_aliases_key_id"), table_name="aliases")
    op.drop_table("aliases")
    op.drop_index(op.f("ix_keys_state_delete_date"), table_name="keys")
    op.drop_index(op.f("ix_keys_next_rotation_date"), table_name="keys")
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("next_rotation_date")
        batch.drop_column("last_rotation_date")
        batch.drop_column("rotation_interval")
        batch.drop_column("deletion_protection_description")
        batch.drop_column("deletion_protection")
