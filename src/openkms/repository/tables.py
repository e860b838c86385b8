"""The schema as SQLAlchemy Core tables. Alembic migrations create it; the repositories query it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
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
    # The account alias (RAM SetAccountAlias, migration 0006): a second name for sign-in names.
    Column("alias", String(32), nullable=True, unique=True),
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
    # Hardware and external key stores (migration 0007): the kind's settings (JSON), the sealed secret
    # (an external instance's SigV4 secret key, wrapped by the keystore), the settings revision and the
    # last health check.
    Column("settings", Text, nullable=False, server_default="{}"),
    Column("sealed_secret", LargeBinary, nullable=True),
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("health_ok", Boolean, nullable=True),
    Column("health_detail", Text, nullable=True),
    Column("health_checked_at", DateTime(timezone=True), nullable=True),
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
    Column("policy", Text, nullable=True),  # the key policy as written; NULL: the default policy
    UniqueConstraint("account_id", "region_id", "default_slot"),
    # The listing order of ListKeys (migration 0010: key_id added, so no sort and no row reads).
    Index(None, "account_id", "region_id", "created_at", "key_id"),
    # An instance's keys: its key count and quota, ListKeys' DKMSInstanceId filter (migration 0013).
    Index(None, "instance_id"),
    # Lifecycle (migration 0002).
    Column("deletion_protection", Boolean, nullable=False, server_default=false()),
    Column("deletion_protection_description", Text, nullable=False, server_default=""),
    Column("rotation_interval", Integer, nullable=True),  # seconds; NULL: no automatic rotation
    Column("last_rotation_date", DateTime(timezone=True), nullable=True),
    Column("next_rotation_date", DateTime(timezone=True), nullable=True),
    Index(None, "next_rotation_date"),
    Index(None, "state", "delete_date"),
    # Imported material (migration 0004): when it expires; NULL: never, or no imported material.
    Column("material_expire_time", DateTime(timezone=True), nullable=True),
    Index(None, "material_expire_time"),
    # Hardware and external key stores (migration 0007): usages besides `usage` (comma-separated),
    # and the external key id of a key in an external instance.
    Column("additional_usages", String(64), nullable=False, server_default=""),
    Column("external_key_id", String(128), nullable=True),
)

# The number of keys of each account and region (migration 0010): ListKeys' unfiltered TotalCount
# without counting the account's keys. Kept by every insert and delete of a keys row, in its transaction.
key_counts = Table(
    "key_counts",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("region_id", String(64), primary_key=True),
    Column("n", BigInteger, nullable=False),
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


# ---- identities (RAM users, roles, policies) and service secrets ------------------------------------

ram_users = Table(
    "ram_users",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("display_name", String(128), nullable=False),
    Column("comments", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ram_roles = Table(
    "ram_roles",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("assume_role_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ram_policies = Table(
    "ram_policies",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("description", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A policy (Custom: of the account; System: built in) attached to a user or a role of the account.
ram_attachments = Table(
    "ram_attachments",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("principal_type", String(8), primary_key=True),  # "User" | "Role"
    Column("principal_name", String(64), primary_key=True),
    Column("policy_type", String(8), primary_key=True),  # "Custom" | "System"
    Column("policy_name", String(128), primary_key=True),
    Column("attached_at", DateTime(timezone=True), nullable=False),
)

# F4.1: an instance shared with other main accounts, who may then create keys in it.
instance_shares = Table(
    "instance_shares",
    metadata,
    Column("instance_id", String(64), ForeignKey("instances.instance_id"), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("shared_at", DateTime(timezone=True), nullable=False),
)

# F4.3: the other main accounts granted on an instance's keys, each using one unit of the instance's
# access quota; a released grant keeps its unit until `released_at` + the release delay.
instance_grants = Table(
    "instance_grants",
    metadata,
    Column("instance_id", String(64), ForeignKey("instances.instance_id"), primary_key=True),
    Column("grantee_account_id", String(20), primary_key=True),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
)

# The access quota of an instance when an administrator set one (otherwise the server's default).
instance_quotas = Table(
    "instance_quotas",
    metadata,
    Column("instance_id", String(64), ForeignKey("instances.instance_id"), primary_key=True),
    Column("access_quota", Integer, nullable=False),
)

# F8: who used a key, batched from every worker: one row per (key, caller, service).
key_usage = Table(
    "key_usage",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("principal", String(256), primary_key=True),
    Column("service", String(64), primary_key=True),  # "" when the caller is not a service
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    Column("call_count", Integer, nullable=False),
)

# F8: the latest key association detection of each key.
key_detections = Table(
    "key_detections",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("detection_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),  # Running | Succeeded | Failed
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("result", Text, nullable=True),  # JSON list of associations
)

# Server-wide secrets (the STS token key), wrapped by the keystore like key material.
service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("wrapped_value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# ---- bring your own key (migration 0004) ------------------------------------------------------------

# An EXTERNAL key's import record: the one version id its material always has (so ciphertext made
# before a deletion or expiry decrypts after the same material is imported again), and the keyed
# fingerprint (HMAC under a server secret, never a plain hash) of the material imported first.
key_imports = Table(
    "key_imports",
    metadata,
    Column("key_id", String(64), ForeignKey("keys.key_id"), primary_key=True),
    Column("version_id", String(36), nullable=False),
    Column("fingerprint", LargeBinary, nullable=True),
)

# GetParametersForImport's tokens: a fresh RSA-2048 wrapping key pair each, the private key wrapped
# by the keystore (bound to key id and token id), valid until `expires_at`.
import_tokens = Table(
    "import_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("key_id", String(64), ForeignKey("keys.key_id"), nullable=False),
    Column("wrapping_algorithm", String(32), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("wrapped_private_key", LargeBinary, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "key_id"),
    Index(None, "expires_at"),
)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---- audit heads (migration 0005) -------------------------------------------------------------------

# The sealed head of each audit file: its last durable record, published by the writing process at
# least every second, so `openkms audit verify` notices records cut off the end or a file deleted.
# `node` scopes heads to one data dir (several nodes may share one database).
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("node", String(255), primary_key=True),
    Column("file", String(255), primary_key=True),
    Column("slot", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_audit_heads_node_slot", "node", "slot"),
)


# ---- console sign-in (migration 0006) ---------------------------------------------------------------

# One password per principal that may sign in to the console: "root" (the account's main account
# password) or "user/<name>" (a RAM user's login profile: the row IS the login profile). Only the
# Argon2id PHC string is stored. Failed attempts count towards a lock until `locked_until`.
console_passwords = Table(
    "console_passwords",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("principal_name", String(128), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("password_reset_required", Boolean, nullable=False),
    Column("mfa_bind_required", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)

# Console sessions: only the SHA-256 of the cookie's token is stored (a stolen table opens nothing).
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("principal_name", String(128), nullable=False),
    Column("sign_in_name", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # absolute; idle expiry is a setting
    Index(None, "account_id", "principal_name"),
    Index(None, "expires_at"),
)


# ---- several nodes on one database (migration 0008) -------------------------------------------------

# Replay protection shared by every node: one row per spent (access key, SignatureNonce), keyed by its
# keyed fingerprint (never the nonce itself), kept until `expires_at` (Unix milliseconds), after which
# the timestamp window refuses a replay anyway and the leader sweeps the row.
spent_nonces = Table(
    "spent_nonces",
    metadata,
    Column("fingerprint", LargeBinary(32), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

# The change counter every node watches (the sum of the rows): a transaction that changes what
# authorization or usability depends on increments its database session's row (`id`: the backend's
# pid; row 1 holds what sessions that ended counted) before it commits, so another node that sees a
# new sum drops its caches.
cluster_generation = Table(
    "cluster_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

# What each worker process of each node has acted on: the change counter's sum it last applied, and
# when it last said so (Unix ms, database clock). A request that changed the store is answered once
# every live worker has applied it (or after a second), so any node's next answer reflects it.
change_acks = Table(
    "change_acks",
    metadata,
    Column("worker", String(128), primary_key=True),
    Column("seen", BigInteger, nullable=False),
    Column("alive_at", BigInteger, nullable=False),
)

# Leases (the jobs leader's): whoever holds the row until `expires_at` (Unix milliseconds of the
# database's clock) may act; `fence` grows with every new holder, and a step commits only while its
# fence is still the row's.
leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("fence", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)


# ---- KEK rotation (migration 0009) ------------------------------------------------------------------

# Terms retired once no stored row was under them any more: their wrapped KEK is deleted from
# `keyring_terms`, and this row says when (a term number is never used again).
keyring_retired_terms = Table(
    "keyring_retired_terms",
    metadata,
    Column("term", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=False),
)

# The rewrap's progress (one row, id 1): the term it moves rows to, how many it moved since that term
# became active, and when it last moved one. The rows themselves say what is left (each names its
# term), so a rewrap that crashed resumes from them; this row is for status and for retirement, which
# waits until no process can still hold a row read before the last batch.
keyring_rewrap = Table(
    "keyring_rewrap",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("term", Integer, nullable=False),
    Column("rewrapped", BigInteger, nullable=False),
    Column("last_batch_at", DateTime(timezone=True), nullable=True),
)


# ---- application access and the instance CA (migration 0011) -----------------------------------------

# The instance API's access model (`domain/access_points.py`), per account and region, by name. List
# values (addresses, permissions, resource patterns, rule and policy names) are JSON arrays.
aap_network_rules = Table(
    "aap_network_rules",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("region_id", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("network_type", String(16), nullable=False),
    Column("source_addresses", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

aap_policies = Table(
    "aap_policies",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("region_id", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("kms_instance", String(64), nullable=False),
    Column("permissions", Text, nullable=False),
    Column("resources", Text, nullable=False),
    Column("network_rules", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

application_access_points = Table(
    "application_access_points",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.account_id"), primary_key=True),
    Column("region_id", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False),
    Column("authentication_method", String(32), nullable=False),
    Column("policies", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A client key's public half only (SubjectPublicKeyInfo, DER): its private key is never stored.
client_keys = Table(
    "client_keys",
    metadata,
    Column("client_key_id", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("region_id", String(64), nullable=False),
    Column("aap_name", String(64), nullable=False),
    Column("key_algorithm", String(32), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "account_id", "region_id", "aap_name"),
)

# The deployment's CA (one row, id 1): its certificate. Its private key is a service secret, wrapped
# by the keystore (`service/instance_ca.py`), written in the same transaction as this row.
instance_ca = Table(
    "instance_ca",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("certificate_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# ---- secrets (migration 0012) --------------------------------------------------------------------

# A secret's metadata; its values live in `secret_versions`, each sealed under a data key that the
# secret's encryption key protects (`service/secret_values.py`). `secret_type` and the rotation
# columns are there for managed secret types (a generic secret rotates by PutSecretValue).
secrets = Table(
    "secrets",
    metadata,
    Column("secret_id", String(36), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.account_id"), nullable=False),
    Column("region_id", String(64), ForeignKey("regions.region_id"), nullable=False),
    Column("name", String(192), nullable=False),
    Column("secret_type", String(32), nullable=False),
    Column("encryption_key_id", String(64), nullable=False),
    Column("instance_id", String(64), ForeignKey("instances.instance_id"), nullable=True),
    Column("description", Text, nullable=False),
    Column("creator", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("policy", Text, nullable=True),  # the secret policy as written; NULL: the default policy
    Column("planned_delete_time", DateTime(timezone=True), nullable=True),
    Column("extended_config", Text, nullable=True),
    Column("automatic_rotation", Boolean, nullable=False, server_default=false()),
    Column("rotation_interval", Integer, nullable=True),
    Column("last_rotation_date", DateTime(timezone=True), nullable=True),
    Column("next_rotation_date", DateTime(timezone=True), nullable=True),
    UniqueConstraint("account_id", "region_id", "name"),
    Index(None, "instance_id"),
    Index(None, "planned_delete_time"),
)

# One version of a secret's value: the data key's ciphertext blob (made by the key pipeline under the
# encryption key, bound to the secret and version) and the value sealed under that data key.
secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", String(36), ForeignKey("secrets.secret_id"), primary_key=True),
    Column("version_id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("stages", Text, nullable=False),  # JSON list of stage names
    Column("data_type", String(16), nullable=False),
    Column("encryption_key_id", String(64), nullable=False),
    Column("data_key_blob", LargeBinary, nullable=False),
    Column("sealed_value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

secret_tags = Table(
    "secret_tags",
    metadata,
    Column("secret_id", String(36), ForeignKey("secrets.secret_id"), primary_key=True),
    Column("tag_key", String(128), primary_key=True),
    Column("tag_value", String(128), nullable=False),
)
