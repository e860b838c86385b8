"""Identities and key policies: RAM users, roles, policies and attachments; service secrets; keys.policy;
instance sharing, grants and access quotas; key usage and key association detection.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(sa.Column("policy", sa.Text(), nullable=True))
    op.create_table(
        "ram_users",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_ram_users_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "user_name", name=op.f("pk_ram_users")),
        sa.UniqueConstraint("user_id", name=op.f("uq_ram_users_user_id")),
    )
    op.create_table(
        "ram_roles",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("assume_role_policy", sa.Text(), nullable=False),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_ram_roles_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "role_name", name=op.f("pk_ram_roles")),
        sa.UniqueConstraint("role_id", name=op.f("uq_ram_roles_role_id")),
    )
    op.create_table(
        "ram_policies",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_ram_policies_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "policy_name", name=op.f("pk_ram_policies")),
    )
    op.create_table(
        "ram_attachments",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("principal_type", sa.String(length=8), nullable=False),
        sa.Column("principal_name", sa.String(length=64), nullable=False),
        sa.Column("policy_type", sa.String(length=8), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_ram_attachments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint(
            "account_id",
            "principal_type",
            "principal_name",
            "policy_type",
            "policy_name",
            name=op.f("pk_ram_attachments"),
        ),
    )
    op.create_table(
        "instance_shares",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name=op.f("fk_instance_shares_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.instance_id"], name=op.f("fk_instance_shares_instance_id_instances")
        ),
        sa.PrimaryKeyConstraint("instance_id", "account_id", name=op.f("pk_instance_shares")),
    )
    op.create_table(
        "instance_grants",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("grantee_account_id", sa.String(length=20), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.instance_id"], name=op.f("fk_instance_grants_instance_id_instances")
        ),
        sa.PrimaryKeyConstraint("instance_id", "grantee_account_id", name=op.f("pk_instance_grants")),
    )
    op.create_table(
        "instance_quotas",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("access_quota", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.instance_id"], name=op.f("fk_instance_quotas_instance_id_instances")
        ),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instance_quotas")),
    )
    op.create_table(
        "key_usage",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=256), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "principal", "service", name=op.f("pk_key_usage")),
    )
    op.create_table(
        "key_detections",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("detection_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_detections")),
    )
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("wrapped_value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_table("key_detections")
    op.drop_table("key_usage")
    op.drop_table("instance_quotas")
    op.drop_table("instance_grants")
    op.drop_table("instance_shares")
    op.drop_table("ram_attachments")
    op.drop_table("ram_policies")
    op.drop_table("ram_roles")
    op.drop_table("ram_users")
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("policy")
