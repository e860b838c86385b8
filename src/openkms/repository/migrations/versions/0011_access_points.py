"""Application access for the instance API (network rules, permission policies, application access
points, client keys' public halves) and the deployment's CA certificate.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _named() -> list[sa.Column[object]]:
    """The columns every access entity starts with: its account, region and name (the key)."""
    return [
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    ]


def _keys(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.PrimaryKeyConstraint("account_id", "region_id", "name", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=f"fk_{table}_account_id_accounts"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "aap_network_rules",
        *_named(),
        sa.Column("network_type", sa.String(length=16), nullable=False),
        sa.Column("source_addresses", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_keys("aap_network_rules"),
    )
    op.create_table(
        "aap_policies",
        *_named(),
        sa.Column("kms_instance", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("network_rules", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_keys("aap_policies"),
    )
    op.create_table(
        "application_access_points",
        *_named(),
        sa.Column("authentication_method", sa.String(length=32), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_keys("application_access_points"),
    )
    op.create_table(
        "client_keys",
        sa.Column("client_key_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("aap_name", sa.String(length=64), nullable=False),
        sa.Column("key_algorithm", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_key_id", name="pk_client_keys"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_client_keys_account_id_accounts"
        ),
    )
    op.create_index(
        "ix_client_keys_account_id_region_id_aap_name", "client_keys", ["account_id", "region_id", "aap_name"]
    )
    op.create_table(
        "instance_ca",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instance_ca"),
    )


def downgrade() -> None:
    op.drop_table("instance_ca")
    op.drop_index("ix_client_keys_account_id_region_id_aap_name", table_name="client_keys")
    op.drop_table("client_keys")
    op.drop_table("application_access_points")
    op.drop_table("aap_policies")
    op.drop_table("aap_network_rules")
