"""Initial schema: regions, accounts, access keys, instances, keys, key versions, keyring terms.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("kms_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "keyring_terms",
        sa.Column("term", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("wrapped_kek", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_keyring_terms")),
    )
    op.create_table(
        "regions",
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region_id", name=op.f("pk_regions")),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("principal_name", sa.String(length=128), nullable=False),
        sa.Column("wrapped_secret", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_access_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_instances_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.region_id"], name=op.f("fk_instances_region_id_regions")
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instances")),
    )
    op.create_index(
        op.f("ix_instances_account_id_region_id"), "instances", ["account_id", "region_id"], unique=False
    )
    op.create_table(
        "keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=True),
        sa.Column("default_slot", sa.String(length=16), nullable=True),
        sa.Column("spec", sa.String(length=32), nullable=False),
        sa.Column("usage", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("protection_level", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("creator", sa.String(length=128), nullable=False),
        sa.Column("creator_type", sa.String(length=16), nullable=False),
        sa.Column("primary_version_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delete_date", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_keys_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.instance_id"], name=op.f("fk_keys_instance_id_instances")
        ),
        sa.ForeignKeyConstraint(["region_id"], ["regions.region_id"], name=op.f("fk_keys_region_id_regions")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_keys")),
        sa.UniqueConstraint(
            "account_id", "region_id", "default_slot", name=op.f("uq_keys_account_id_region_id_default_slot")
        ),
    )
    op.create_index(
        op.f("ix_keys_account_id_region_id_created_at"),
        "keys",
        ["account_id", "region_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "key_versions",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("wrapped_material", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.key_id"], name=op.f("fk_key_versions_key_id_keys")),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_key_versions")),
        sa.UniqueConstraint("key_id", "seq", name=op.f("uq_key_versions_key_id_seq")),
    )


def downgrade() -> None:
    op.drop_table("key_versions")
    op.drop_index(op.f("ix_keys_account_id_region_id_created_at"), table_name="keys")
    op.drop_table("keys")
    op.drop_index(op.f("ix_instances_account_id_region_id"), table_name="instances")
    op.drop_table("instances")
    op.drop_table("access_keys")
    op.drop_table("regions")
    op.drop_table("keyring_terms")
    op.drop_table("accounts")
