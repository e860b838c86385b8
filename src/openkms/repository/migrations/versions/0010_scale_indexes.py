"""ListKeys at scale: the account's keys indexed in their listing order (created_at, then key_id).

The listing orders by (created_at, key_id). The index on (account_id, region_id, created_at) left the
key_id tie-break to a sort of every matching row, and could not give a page's key ids without reading
each row. With key_id in the index the first page is read in order, and a deep page (its OFFSET) and
TotalCount walk the index alone.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD = "ix_keys_account_id_region_id_created_at"
NEW = "ix_keys_account_id_region_id_created_at_key_id"


def upgrade() -> None:
    op.create_index(NEW, "keys", ["account_id", "region_id", "created_at", "key_id"])
    op.drop_index(OLD, table_name="keys")


def downgrade() -> None:
    op.create_index(OLD, "keys", ["account_id", "region_id", "created_at"])
    op.drop_index(NEW, table_name="keys")
