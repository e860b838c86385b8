"""Bring your own key: keys.material_expire_time, key_imports (the fixed version id and the keyed
fingerprint of imported material) and import_tokens (wrapping key pairs, the private key wrapped).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(sa.Column("material_expire_time", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_keys_material_expire_time"), ["material_expire_time"], unique=False)
    op.create_table(
        "key_imports",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["keys.key_id"], name=op.f("fk_key_imports_key_id_keys")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_imports")),
    )
    op.create_table(
        "import_tokens",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapping_algorithm", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.key_id"], name=op.f("fk_import_tokens_key_id_keys")),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_import_tokens")),
    )
    op.create_index(op.f("ix_import_tokens_key_id"), "import_tokens", ["key_id"], unique=False)
    op.create_index(op.f("ix_import_tokens_expires_at"), "import_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_import_tokens_expires_at"), table_name="import_tokens")
    op.drop_index(op.f("ix_import_tokens_key_id"), table_name="import_tokens")
    op.drop_table("import_tokens")
    op.drop_table("key_imports")
    with op.batch_alter_table("keys") as batch:
        batch.drop_index(op.f("ix_keys_material_expire_time"))
        batch.drop_column("material_expire_time")
