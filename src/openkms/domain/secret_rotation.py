"""Rotation of managed secrets as values: the OpenKMS PostgreSQL role secret's ExtendedConfig and
value, the `ACSPending` stage of a rotation under way, and RotationInterval's `integer[unit]` form.

OpenKMS extension: `OpenKMS.PostgreSQL` is not an Alibaba secret type. Its value has the shape of
Alibaba's managed database secrets (`{"AccountName": ..., "AccountPassword": ...}`), so code that
reads an Rds secret reads it unchanged. Pure: no I/O; a password only ever passes through as
SecretBytes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openkms.domain.random_password import PasswordRules
from openkms.domain.secrets import SecretDataType, SecretType
from openkms.errors import InvalidArgument, MissingParameter
from openkms.secret import SecretBytes

ACS_PENDING = "ACSPending"  # the new version while OpenKMS sets it on the database
EXTENDED_CONFIG_LIMIT = 1024  # characters, as CreateSecret documents
INTERVAL_MIN_SECONDS = 6 * 3600  # the SDK's documented range: 6 hours ...
INTERVAL_MAX_SECONDS = 8760 * 3600  # ... to 8,760 hours (365 days)
RETRY_SECONDS = 3600  # an automatic rotation that failed is tried again an hour later
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
# New passwords: 32 characters of GetRandomPassword's generator, without the characters that need
# quoting in a connection URI, a libpq keyword string or a shell.
PASSWORD_RULES = PasswordRules(length=32, exclude_characters="\"'`\\/@:?#&%=;$ ")

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"^([0-9]{1,10})([dhms])\Z")
# One DNS name or one IP address: never a Unix-socket path (`/...`), a host list (`,`), a user
# (`@`) or anything libpq would read as more than a host.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\Z"
)
_CONFIG_KEYS = frozenset(
    {"Host", "Port", "DBName", "AccountName", "MasterSecretName", "SSLMode", "CustomData"}
)


def parse_interval(raw: str) -> int:
    """RotationInterval (`7d`, `168h`, `604800s`, ...) in seconds, within 6 hours to 365 days."""
    match = _INTERVAL.match(raw.strip())
    if match is None:
        raise InvalidArgument(
            "RotationInterval is integer[unit] with unit d, h, m or s (e.g. 7d or 604800s).",
            parameter="RotationInterval",
        )
    seconds = int(match[1]) * _UNITS[match[2]]
    if not INTERVAL_MIN_SECONDS <= seconds <= INTERVAL_MAX_SECONDS:
        raise InvalidArgument(
            "RotationInterval must be between 6 hours and 8,760 hours (365 days).",
            parameter="RotationInterval",
        )
    return seconds


def render_interval(seconds: int) -> str:
    """The wire form DescribeSecret and GetSecretValue answer: seconds with the unit s."""
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where the role lives and how OpenKMS signs in to change its password: as the role itself
    (its current password), or as the admin role of the named master secret."""

    host: str
    port: int
    dbname: str
    account_name: str
    master_secret: str | None = None
    sslmode: str = "prefer"
    custom_data: Mapping[str, object] | None = None

    def to_json(self) -> str:
        fields: dict[str, object] = {
            "Host": self.host,
            "Port": self.port,
            "DBName": self.dbname,
            "AccountName": self.account_name,
            "SSLMode": self.sslmode,
        }
        if self.master_secret is not None:
            fields["MasterSecretName"] = self.master_secret
        if self.custom_data is not None:
            fields["CustomData"] = dict(self.custom_data)
        return json.dumps(fields, separators=(",", ":"))


def _config_error(message: str) -> InvalidArgument:
    return InvalidArgument(message, parameter="ExtendedConfig")


def _text(fields: Mapping[str, object], name: str, limit: int = 255) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise _config_error(f"ExtendedConfig.{name} is a string of 1 to {limit} characters.")
    return value


def _host(raw: str) -> str:
    """ExtendedConfig.Host: one DNS name or one IP address (not a socket path, not a list)."""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    if not is_host_name(raw):
        raise _config_error("ExtendedConfig.Host is one DNS name or one IP address.")
    return raw.removesuffix(".").lower()  # `db.internal.` is `db.internal`


def is_host_name(text: str) -> bool:
    """One DNS name (labels of letters, digits, `_` and inner `-`; a trailing dot allowed): what a
    managed secret's Host and an entry of `managed_secret_hosts` may be when not an address."""
    return _HOST_NAME.match(text.removesuffix(".")) is not None


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether the operator's `managed_secret_hosts` admits `host`: an entry is a DNS name (matched
    exactly, without resolving it), an IP address or a network in CIDR form. Empty admits nothing."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw_entry in allowed:
        entry = raw_entry.strip().lower().removesuffix(".")
        if not entry:
            continue
        if address is None:
            if entry == host.lower().removesuffix("."):
                return True
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a name: an address does not match it
    return False


def parse_postgres_target(raw: str | None) -> PostgresTarget:
    """An OpenKMS.PostgreSQL secret's ExtendedConfig (a JSON object): Host, Port (default 5432),
    DBName (default postgres), AccountName (the role to rotate), optional MasterSecretName, SSLMode
    (default prefer) and CustomData."""
    if raw is None or not raw.strip():
        raise _config_error("An OpenKMS.PostgreSQL secret needs ExtendedConfig (Host, AccountName, ...).")
    if len(raw) > EXTENDED_CONFIG_LIMIT:
        raise _config_error(f"ExtendedConfig is longer than {EXTENDED_CONFIG_LIMIT} characters.")
    try:
        fields = json.loads(raw)
    except ValueError:
        raise _config_error("ExtendedConfig is a JSON object.") from None
    if not isinstance(fields, dict):
        raise _config_error("ExtendedConfig is a JSON object.")
    unknown = sorted(set(fields) - _CONFIG_KEYS)
    if unknown:
        raise _config_error(f"ExtendedConfig has unknown fields: {', '.join(unknown)}.")
    port = fields.get("Port", 5432)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _config_error("ExtendedConfig.Port is a port number (1 to 65535).")
    sslmode = fields.get("SSLMode", "prefer")
    if sslmode not in SSL_MODES:
        raise _config_error(f"ExtendedConfig.SSLMode is one of {', '.join(sorted(SSL_MODES))}.")
    custom = fields.get("CustomData")
    if custom is not None and not isinstance(custom, dict):
        raise _config_error("ExtendedConfig.CustomData is a JSON object.")
    master = fields.get("MasterSecretName")
    dbname = _text(fields, "DBName") if "DBName" in fields else "postgres"
    if "=" in dbname or dbname.startswith(("postgresql:", "postgres:")):
        # libpq can read such a dbname as a whole connection string (other hosts, users, files);
        # psycopg does not ask it to, so this is defense in depth.
        raise _config_error("ExtendedConfig.DBName is a database name, not a connection string.")
    return PostgresTarget(
        host=_host(_text(fields, "Host")),
        port=port,
        dbname=dbname,
        account_name=_text(fields, "AccountName", 63),
        master_secret=None if master is None else _text(fields, "MasterSecretName", 192),
        sslmode=str(sslmode),
        custom_data=custom,
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A role name and its password (held as SecretBytes: never printed)."""

    account_name: str
    password: SecretBytes


def parse_credentials(value: SecretBytes, parameter: str = "SecretData") -> Credentials:
    """A database secret's value: `{"AccountName": ..., "AccountPassword": ...}`. The error never
    quotes the value."""
    try:
        fields = json.loads(value.reveal().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        fields = None
    name = fields.get("AccountName") if isinstance(fields, dict) else None
    password = fields.get("AccountPassword") if isinstance(fields, dict) else None
    if not isinstance(name, str) or not name or not isinstance(password, str) or not password:
        raise InvalidArgument(
            'The value is {"AccountName": "<role>", "AccountPassword": "<password>"}.', parameter=parameter
        )
    return Credentials(name, SecretBytes(password.encode("utf-8")))


def render_credentials(credentials: Credentials) -> SecretBytes:
    """The stored value of a database secret version."""
    password = credentials.password.reveal().decode("utf-8")
    return SecretBytes(
        json.dumps({"AccountName": credentials.account_name, "AccountPassword": password}).encode("utf-8")
    )


@dataclass(frozen=True, slots=True)
class ManagedSettings:
    """What CreateSecret stores of ExtendedConfig and the rotation policy (nothing for Generic)."""

    extended_config: str | None = None
    automatic_rotation: bool = False
    rotation_interval: int | None = None  # seconds


def check_managed(
    secret_type: SecretType,
    data: SecretBytes,
    data_type: SecretDataType,
    extended_config: str | None,
    automatic_rotation: bool,
    rotation_interval: int | None,
) -> ManagedSettings:
    """CreateSecret's rules for a managed type: ExtendedConfig names the role, SecretData is the
    role's credentials with that AccountName, text only; EnableAutomaticRotation needs a
    RotationInterval. A Generic secret refuses automatic rotation and ignores the rest."""
    if not secret_type.managed:
        if automatic_rotation:
            raise InvalidArgument(
                "A Generic secret rotates by PutSecretValue: EnableAutomaticRotation does not apply.",
                parameter="EnableAutomaticRotation",
            )
        return ManagedSettings()
    target = parse_postgres_target(extended_config)
    if data_type is not SecretDataType.TEXT:
        raise InvalidArgument(f"A {secret_type} secret's SecretDataType is text.", parameter="SecretDataType")
    if parse_credentials(data).account_name != target.account_name:
        raise InvalidArgument(
            "SecretData's AccountName must be ExtendedConfig's AccountName.", parameter="SecretData"
        )
    if automatic_rotation and rotation_interval is None:
        raise MissingParameter("RotationInterval")
    return ManagedSettings(
        target.to_json(), automatic_rotation, rotation_interval if automatic_rotation else None
    )
