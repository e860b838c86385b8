"""ListKeys at scale: the listing index with key_id, and a kept count of each account's keys.

The listing orders by (created_at, key_id). The index on (account_id, region_id, created_at) left the
key_id tie-break to a sort of every matching row, and could not give a page's key ids without reading
each row. With key_id in the index the first page is read in order, and a deep page (its OFFSET) walks
the index alone.

TotalCount without filters counted every key of the account on each ListKeys. `key_counts` keeps that
number per (account_id, region_id); the repository changes it in the transaction of every insert and
delete of a key row. It is filled here for the keys that exist.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD = "ix_keys_account_id_region_id_created_at"
NEW = "ix_keys_account_id_region_id_created_at_key_id"


def upgrade() -> None:
    op.create_index(NEW, "keys", ["account_id", "region_id", "created_at", "key_id"])
    op.drop_index(OLD, table_name="keys")
    op.create_table(
        "key_counts",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region_id", name="pk_key_counts"),
    )
    op.execute(
        "INSERT INTO key_counts (account_id, region_id, n) "
        "SELECT account_id, region_id, COUNT(*) FROM keys GROUP BY account_id, region_id"
    )


def downgrade() -> None:
    op.drop_table("key_counts")
    op.create_index(OLD, "keys", ["account_id", "region_id", "created_at"])
    op.drop_index(NEW, table_name="keys")
