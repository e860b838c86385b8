"""The schema as SQLAlchemy Core tables. Alembic migrations create it; the repositories query it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

regions = Table(
    "regions",
    metadata,
    Column("region_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("kms_status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("principal_name", String(128), nullable=False),
    # The secret is wrapped by the keystore (AAD binds the access key id): storage is untrusted.
    Column("wrapped_secret", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("region_id", String(64), ForeignKey("regions.region_id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "account_id", "region_id"),
)

keys = Table(
    "keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("region_id", String(64), ForeignKey("regions.region_id"), nullable=False),
    Column("instance_id", String(64), ForeignKey("instances.instance_id"), nullable=True),
    # "cmk" for the region's customer master key, NULL otherwise: the unique constraint below then
    # admits at most one customer master key per account and region.
    Column("default_slot", String(16), nullable=True),
    Column("spec", String(32), nullable=False),
    Column("usage", String(32), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("protection_level", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("creator", String(128), nullable=False),
    Column("creator_type", String(16), nullable=False),
    Column("primary_version_id", String(36), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delete_date", DateTime(timezone=True), nullable=True),
    UniqueConstraint("account_id", "region_id", "default_slot"),
    Index(None, "account_id", "region_id", "created_at"),
    # Lifecycle (migration 0002).
    Column("deletion_protection", Boolean, nullable=False, server_default=false()),
    Column("deletion_protection_description", Text, nullable=False, server_default=""),
    Column("rotation_interval", Integer, nullable=True),  # seconds; NULL: no automatic rotation
    Column("last_rotation_date", DateTime(timezone=True), nullable=True),
    Column("next_rotation_date", DateTime(timezone=True), nullable=True),
    Index(None, "next_rotation_date"),
    Index(None, "state", "delete_date"),
)

key_versions = Table(
    "key_versions",
    metadata,
    Column("version_id", String(36), primary_key=True),
    Column("key_id", String(64), ForeignKey("keys.key_id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("wrapped_material", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("key_id", "seq"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("region_id", String(64), primary_key=True),
    Column("alias_name", String(255), primary_key=True),
    Column("key_id", String(64), ForeignKey("keys.key_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "key_id"),
)

key_tags = Table(
    "key_tags",
    metadata,
    Column("key_id", String(64), ForeignKey("keys.key_id"), primary_key=True),
    Column("tag_key", String(128), primary_key=True),
    Column("tag_value", String(128), nullable=False),
)

keyring_terms = Table(
    "keyring_terms",
    metadata,
    Column("term", Integer, primary_key=True, autoincrement=False),
    Column("wrapped_kek", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
