"""Several nodes on one database: the shared replay cache, the change counter nodes watch (and what each
worker has applied of it), and leases.

On PostgreSQL, a statement trigger on every table that authorization or a key's usability depends on
increments the change counter (its session's row of it: the counter is the sum of the rows) and sends
NOTIFY openkms_changes in the changing transaction, so the announcement is made exactly when (and only
if) the change commits, whatever code path made it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# The tables whose changes other nodes must act on (their caches, or the material in their memory).
WATCHED_TABLES = (
    "accounts",
    "access_keys",
    "instances",
    "keys",
    "key_versions",
    "aliases",
    "key_tags",
    "keyring_terms",
    "ram_users",
    "ram_roles",
    "ram_policies",
    "ram_attachments",
    "instance_shares",
    "instance_grants",
    "instance_quotas",
    "key_imports",
)
# Updates nobody caches against are left out: an instance's health check, and a KEK rotation's rewrap
# of a wrapped column (the same secret under another term: key versions, access key secrets,
# instance secrets). A key version's material is wiped by a DELETE, which is announced.
_EVENTS = {
    "instances": "INSERT OR UPDATE OF account_id, region_id, kind, name, settings, revision OR DELETE",
    "key_versions": "INSERT OR DELETE",
    "access_keys": "INSERT OR UPDATE OF account_id, principal_name, status OR DELETE",
}

_ANNOUNCE = """
CREATE FUNCTION openkms_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One counter row per database session: a transaction locks only its own session's row, so
    -- changing transactions never wait for each other here (nor deadlock). Readers sum the rows.
    INSERT INTO cluster_generation (id, value) VALUES (pg_backend_pid(), 1)
        ON CONFLICT (id) DO UPDATE SET value = cluster_generation.value + 1;
    -- Delivered at commit, once per transaction (same payload): the transaction's start in ms.
    PERFORM pg_notify('openkms_changes', (extract(epoch FROM now()) * 1000)::bigint::text);
    RETURN NULL;
END
$$
"""


def _trigger(table: str) -> str:
    events = _EVENTS.get(table, "INSERT OR UPDATE OR DELETE")
    return (
        f"CREATE TRIGGER openkms_changes AFTER {events} OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION openkms_announce_change()"
    )


def upgrade() -> None:
    op.create_table(
        "spent_nonces",
        sa.Column("fingerprint", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_spent_nonces_expires_at", "spent_nonces", ["expires_at"])
    op.create_table(
        "cluster_generation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO cluster_generation (id, value) VALUES (1, 0)")
    op.create_table(
        "change_acks",
        sa.Column("worker", sa.String(length=128), primary_key=True),
        sa.Column("seen", sa.BigInteger(), nullable=False),
        sa.Column("alive_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("fence", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ANNOUNCE)
        for table in WATCHED_TABLES:
            op.execute(_trigger(table))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS openkms_changes ON {table}")
        op.execute("DROP FUNCTION IF EXISTS openkms_announce_change()")
    op.drop_table("leases")
    op.drop_table("change_acks")
    op.drop_table("cluster_generation")
    op.drop_index("ix_spent_nonces_expires_at", table_name="spent_nonces")
    op.drop_table("spent_nonces")
