"""Keys by instance: an index on keys.instance_id.

An instance's key count (GetKmsInstance, ListKmsInstances, the key quota CreateKey enforces) and
ListKeys' DKMSInstanceId filter read the keys of one instance; without this index each of them read
every key of the store.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NAME = "ix_keys_instance_id"


def upgrade() -> None:
    op.create_index(NAME, "keys", ["instance_id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="keys")
