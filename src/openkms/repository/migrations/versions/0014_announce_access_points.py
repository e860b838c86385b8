"""Announce changes to application access points to every node (PostgreSQL).

The instance API caches what a client key may do (its access point, policies and network rules) like
access keys; a change on one node must empty the other nodes' caches, so these tables get migration
0008's statement trigger too (`openkms_announce_change`, LISTEN/NOTIFY and the generation counter).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TABLES = ("application_access_points", "client_keys", "aap_policies", "aap_network_rules")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER openkms_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION openkms_announce_change()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS openkms_changes ON {table}")
