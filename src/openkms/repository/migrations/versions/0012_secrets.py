"""Secrets: their metadata, their versions (each value sealed under a data key the secret's
encryption key protects) and their tags.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=192), nullable=False),
        sa.Column("secret_type", sa.String(length=32), nullable=False),
        sa.Column("encryption_key_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("planned_delete_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extended_config", sa.Text(), nullable=True),
        sa.Column("automatic_rotation", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("rotation_interval", sa.Integer(), nullable=True),
        sa.Column("last_rotation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_rotation_date", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_secrets_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(["region_id"], ["regions.region_id"], name="fk_secrets_region_id_regions"),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.instance_id"], name="fk_secrets_instance_id_instances"
        ),
        sa.PrimaryKeyConstraint("secret_id", name="pk_secrets"),
        sa.UniqueConstraint("account_id", "region_id", "name", name="uq_secrets_account_id_region_id_name"),
    )
    op.create_index("ix_secrets_instance_id", "secrets", ["instance_id"])
    op.create_index("ix_secrets_planned_delete_time", "secrets", ["planned_delete_time"])
    op.create_table(
        "secret_versions",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stages", sa.Text(), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("encryption_key_id", sa.String(length=64), nullable=False),
        sa.Column("data_key_blob", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.secret_id"], name="fk_secret_versions_secret_id_secrets"
        ),
        sa.PrimaryKeyConstraint("secret_id", "version_id", name="pk_secret_versions"),
    )
    op.create_table(
        "secret_tags",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("tag_key", sa.String(length=128), nullable=False),
        sa.Column("tag_value", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.secret_id"], name="fk_secret_tags_secret_id_secrets"
        ),
        sa.PrimaryKeyConstraint("secret_id", "tag_key", name="pk_secret_tags"),
    )


def downgrade() -> None:
    op.drop_table("secret_tags")
    op.drop_table("secret_versions")
    op.drop_index("ix_secrets_planned_delete_time", table_name="secrets")
    op.drop_index("ix_secrets_instance_id", table_name="secrets")
    op.drop_table("secrets")
