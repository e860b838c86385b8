"""Typed, validated, immutable settings: defaults < TOML file < OPENKMS_* environment < command-line flags.

Unknown keys in the file are errors; one clear message names a bad value. `redacted()` is the only
dump and never shows passphrases or database passwords.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from sqlalchemy.engine import make_url

from openkms.domain.secret_rotation import is_host_name

SealKind = Literal["keyfile", "passphrase"]
# Where a spent SignatureNonce is remembered: this node's memory ("node"), or also the database every
# node shares ("shared", PostgreSQL only); "auto" is shared on PostgreSQL and node on SQLite.
ReplayScope = Literal["auto", "node", "shared"]
LogFormat = Literal["text", "json"]

_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


class ConfigError(ValueError):
    """A setting has a bad value; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("openkms-data")
    host: str = "127.0.0.1"
    port: int = 9600
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    regions: tuple[str, ...] = ("cn-hangzhou",)
    workers: int = 1
    seal: SealKind = "keyfile"
    audit_fsync: bool = True
    # The node's replay cache: 0 sizes it from the window (`replay_cache_slots`); a number is the
    # operator's own size. nonce_peak_rate is the signed requests per second the node takes at its peak.
    nonce_slots: int = 0
    nonce_peak_rate: int = 2000
    # The most of the replay cache one account may hold (a fraction of nonce_slots): one account
    # spending nonces as fast as it can never fills the table for the others.
    nonce_account_share: float = 0.125
    cache_ttl_seconds: float = 2.0
    timestamp_window_seconds: int = 900
    # How far ahead of the server's clock a request's timestamp may be (behind: the window).
    timestamp_future_skew_seconds: int = 300
    # Requests per second per account and per access key, by action class (0: no limit), each with
    # a burst of rate_burst_seconds x the rate; per node (node/rate_limits.py).
    rate_crypto_per_account: int = 2000
    rate_management_per_account: int = 200
    rate_ram_per_account: int = 100
    rate_crypto_per_access_key: int = 2000
    rate_management_per_access_key: int = 200
    rate_ram_per_access_key: int = 100
    rate_burst_seconds: float = 2.0
    access_quota: int = 10  # other main accounts an instance's keys may grant (F4.3), per instance
    grant_release_seconds: int = 300  # how long a removed grant keeps its quota unit
    # Secrets an instance may hold (and an account per region outside any instance); docs/secrets.md.
    secret_quota: int = 1000
    # Database hosts OpenKMS.PostgreSQL secrets may name (DNS names, IP addresses, CIDR networks);
    # empty: managed secrets are off. OpenKMS signs in there and changes passwords: docs/secrets.md.
    managed_secret_hosts: tuple[str, ...] = ()
    key_quota: int = 100_000  # keys an instance may hold (GetKmsInstance KeyNum); README
    log_level: str = "info"
    log_format: LogFormat = "text"  # "json": one JSON object per log line, in every process
    # HTTPS: a PEM certificate chain (the server's certificate first) and its PEM private key; both or
    # neither. Without them the server speaks plain HTTP.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Or HTTPS with a certificate the deployment's own CA issues at start for `tls_names` (DNS names
    # and IP addresses clients connect to); clients trust that CA (`openkms instance ca`).
    tls_instance_ca: bool = False
    tls_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    # Lifecycle jobs: seconds between job runs (0: no job runner in this process), and the
    # development clock that `openkms dev advance` moves (off unless `serve --dev-clock`).
    job_interval_seconds: float = 60.0
    dev_clock: bool = False
    # Several nodes on one PostgreSQL store (docs/operations.md): the replay cache's scope; how long
    # the jobs leader's lease lasts without renewal; how often a node reads the change counter (the
    # bound on acting on another node's change when a notification is lost).
    replay_scope: ReplayScope = "auto"
    job_lease_seconds: float = 15.0
    coherence_poll_seconds: float = 0.25
    # Slow and oversized clients, per worker (server/http_protocol.py): seconds to send a request's
    # header section (from its first byte, or from the connection's accept) and then its body; open
    # connections; the header section's size and number of fields; the RPC body's size.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 1 << 20
    # The web console (service/sign_in.py): a session ends after idle seconds without a request or max
    # seconds after sign-in; threshold failed sign-ins in a row lock a sign-in name for lockout seconds.
    console_session_idle_seconds: int = 1800
    console_session_max_seconds: int = 43200
    console_lockout_threshold: int = 5
    console_lockout_seconds: int = 900
    # Not settable from files: only from the environment (secrets) at first start.
    root_access_key_id: str | None = field(default=None, repr=False)
    root_access_key_secret: str | None = field(default=None, repr=False)
    unseal_passphrase: str | None = field(default=None, repr=False)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'openkms.db').resolve()}"

    @property
    def shared_replay(self) -> bool:
        """Whether spent nonces also go to the database every node shares."""
        if self.replay_scope == "auto":
            return not self.effective_database_url.startswith("sqlite")
        return self.replay_scope == "shared"

    @property
    def replay_cache_slots(self) -> int:
        """Slots of the replay cache: `nonce_slots` if set, else twice the entries live at the peak
        rate (a nonce lives while its timestamp is in the window), rounded up to a power of two
        (4,194,304 slots, 96 MiB, at the defaults)."""
        if self.nonce_slots:
            return self.nonce_slots
        live = self.nonce_peak_rate * self.timestamp_window_seconds
        return max(1 << 16, 1 << (2 * live - 1).bit_length())

    @property
    def root_access_key(self) -> tuple[str, str] | None:
        """The root access key preset from the environment, used at first start; None if not set."""
        if self.root_access_key_id and self.root_access_key_secret:
            return self.root_access_key_id, self.root_access_key_secret
        return None

    @property
    def default_region(self) -> str:
        return self.regions[0]

    def redacted(self) -> dict[str, object]:
        """A dump safe for logs: secrets are left out and DSN passwords masked."""
        url = make_url(self.effective_database_url)
        return {
            "data_dir": str(self.data_dir),
            "host": self.host,
            "port": self.port,
            "database_url": url.render_as_string(hide_password=True),
            "regions": list(self.regions),
            "workers": self.workers,
            "seal": self.seal,
            "audit_fsync": self.audit_fsync,
            "nonce_slots": self.nonce_slots,
            "nonce_peak_rate": self.nonce_peak_rate,
            "nonce_account_share": self.nonce_account_share,
            "cache_ttl_seconds": self.cache_ttl_seconds,
            "timestamp_window_seconds": self.timestamp_window_seconds,
            "timestamp_future_skew_seconds": self.timestamp_future_skew_seconds,
            **{name: getattr(self, name) for name in RATE_FIELDS},
            "rate_burst_seconds": self.rate_burst_seconds,
            "access_quota": self.access_quota,
            "grant_release_seconds": self.grant_release_seconds,
            "secret_quota": self.secret_quota,
            "managed_secret_hosts": ",".join(self.managed_secret_hosts),
            "key_quota": self.key_quota,
            "log_level": self.log_level,
            "log_format": self.log_format,
            # Only when set: the dump is also what `serve` hands its workers as OPENKMS_* variables.
            **({} if self.tls_cert is None else {"tls_cert": str(self.tls_cert)}),
            **({} if self.tls_key is None else {"tls_key": str(self.tls_key)}),
            "tls_instance_ca": self.tls_instance_ca,
            "tls_names": ",".join(self.tls_names),
            "job_interval_seconds": self.job_interval_seconds,
            "dev_clock": self.dev_clock,
            "replay_scope": self.replay_scope,
            "job_lease_seconds": self.job_lease_seconds,
            "coherence_poll_seconds": self.coherence_poll_seconds,
            "header_timeout_seconds": self.header_timeout_seconds,
            "body_timeout_seconds": self.body_timeout_seconds,
            "max_connections": self.max_connections,
            "max_header_bytes": self.max_header_bytes,
            "max_headers": self.max_headers,
            "max_body_bytes": self.max_body_bytes,
            **{name: getattr(self, name) for name in CONSOLE_FIELDS},
        }


_CLIENT_TIMEOUTS = {"header_timeout_seconds": 600.0, "body_timeout_seconds": 3600.0}  # name: most
_CLIENT_LIMITS = {  # name: (least, most)
    "max_connections": (1, 100_000),
    "max_header_bytes": (1024, 1 << 20),
    "max_headers": (8, 1000),
    "max_body_bytes": (1024, 64 << 20),
}
RATE_FIELDS = (
    "rate_crypto_per_account",
    "rate_management_per_account",
    "rate_ram_per_account",
    "rate_crypto_per_access_key",
    "rate_management_per_access_key",
    "rate_ram_per_access_key",
)
CONSOLE_FIELDS = {  # name: (least, most)
    "console_session_idle_seconds": (60, 86_400),
    "console_session_max_seconds": (300, 604_800),
    "console_lockout_threshold": (1, 100),
    "console_lockout_seconds": (1, 86_400),
}
_SECRET_FIELDS = {"root_access_key_id", "root_access_key_secret", "unseal_passphrase"}
_FILE_FIELDS = {f.name for f in fields(Settings)} - _SECRET_FIELDS


def _coerce(name: str, raw: Any) -> Any:
    """Turn a file or environment value into the field's type, or raise ConfigError."""
    try:
        if name == "data_dir":
            return Path(str(raw))
        if name in {"tls_cert", "tls_key"}:
            return None if raw is None or str(raw) == "" else Path(str(raw))
        if name in {
            "port",
            "workers",
            "nonce_slots",
            "nonce_peak_rate",
            "timestamp_window_seconds",
            "timestamp_future_skew_seconds",
            "access_quota",
            "grant_release_seconds",
            "secret_quota",
            "key_quota",
            *_CLIENT_LIMITS,
            *RATE_FIELDS,
            *CONSOLE_FIELDS,
        }:
            if isinstance(raw, bool):
                raise TypeError
            return int(raw)
        if name in {
            "cache_ttl_seconds",
            "job_interval_seconds",
            "job_lease_seconds",
            "coherence_poll_seconds",
            "nonce_account_share",
            "rate_burst_seconds",
            *_CLIENT_TIMEOUTS,
        }:
            return float(raw)
        if name in {"audit_fsync", "dev_clock", "tls_instance_ca"}:
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError
            return lowered in {"true", "1", "yes"}
        if name in {"regions", "tls_names", "managed_secret_hosts"}:
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return None if raw is None else str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {raw!r}") from exc


def _validate(settings: Settings) -> Settings:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"setting 'port': {settings.port} is not a TCP port")
    if not 1 <= settings.workers <= 64:
        raise ConfigError("setting 'workers': must be between 1 and 64")
    if not settings.regions:
        raise ConfigError("setting 'regions': at least one region is required")
    for region in settings.regions:
        if not _REGION.match(region):
            raise ConfigError(f"setting 'regions': {region!r} is not a region id like cn-hangzhou")
    if settings.seal not in get_args(SealKind):
        raise ConfigError(f"setting 'seal': must be one of {', '.join(get_args(SealKind))}")
    if settings.log_format not in get_args(LogFormat):
        raise ConfigError(f"setting 'log_format': must be one of {', '.join(get_args(LogFormat))}")
    _validate_tls(settings.tls_cert, settings.tls_key)
    _validate_replay_cache(settings)
    _validate_instance_tls(settings)
    _validate_managed_hosts(settings)
    if not 0 <= settings.cache_ttl_seconds <= 60:
        raise ConfigError("setting 'cache_ttl_seconds': must be between 0 and 60")
    for quota, most_quota in (
        ("access_quota", 10_000),
        ("secret_quota", 1_000_000),
        ("key_quota", 10_000_000),
    ):
        if not 0 <= getattr(settings, quota) <= most_quota:
            raise ConfigError(f"setting '{quota}': must be between 0 and {most_quota}")
    if not 0 <= settings.grant_release_seconds <= 86_400:
        raise ConfigError("setting 'grant_release_seconds': must be between 0 and 86400")
    if not 0 <= settings.job_interval_seconds <= 86400:
        raise ConfigError("setting 'job_interval_seconds': must be between 0 and 86400")
    _validate_nodes(settings)
    if not 60 <= settings.timestamp_window_seconds <= 3600:
        raise ConfigError("setting 'timestamp_window_seconds': must be between 60 and 3600")
    for name, most in _CLIENT_TIMEOUTS.items():
        if not 0.1 <= getattr(settings, name) <= most:
            raise ConfigError(f"setting {name!r}: must be between 0.1 and {most:g}")
    for name, (least, most) in _CLIENT_LIMITS.items():
        if not least <= getattr(settings, name) <= most:
            raise ConfigError(f"setting {name!r}: must be between {least} and {most}")
    if not 0 <= settings.timestamp_future_skew_seconds <= 900:
        raise ConfigError("setting 'timestamp_future_skew_seconds': must be between 0 and 900")
    if not 0 < settings.nonce_account_share <= 1:
        raise ConfigError("setting 'nonce_account_share': must be above 0 and at most 1")
    for name in RATE_FIELDS:
        if not 0 <= getattr(settings, name) <= 10_000_000:
            raise ConfigError(f"setting {name!r}: must be between 0 (no limit) and 10000000 per second")
    if not 0.001 <= settings.rate_burst_seconds <= 3600:
        raise ConfigError("setting 'rate_burst_seconds': must be between 0.001 and 3600")
    for name, (least, most) in CONSOLE_FIELDS.items():
        if not least <= getattr(settings, name) <= most:
            raise ConfigError(f"setting {name!r}: must be between {least} and {most}")
    if settings.console_session_idle_seconds > settings.console_session_max_seconds:
        raise ConfigError(
            "setting 'console_session_idle_seconds': must not exceed console_session_max_seconds"
        )
    if settings.database_url:
        try:
            make_url(settings.database_url)
        except Exception as exc:
            raise ConfigError("setting 'database_url': not a database URL") from exc
    if bool(settings.root_access_key_id) != bool(settings.root_access_key_secret):
        raise ConfigError(
            "OPENKMS_ROOT_ACCESS_KEY_ID and OPENKMS_ROOT_ACCESS_KEY_SECRET must be set together"
        )
    return settings


def _validate_replay_cache(settings: Settings) -> None:
    if settings.nonce_slots and settings.nonce_slots < 1024:
        raise ConfigError("setting 'nonce_slots': must be 0 (sized from the window) or at least 1024")
    if not 1 <= settings.nonce_peak_rate <= 1_000_000:
        raise ConfigError("setting 'nonce_peak_rate': must be between 1 and 1000000 per second")


def _validate_nodes(settings: Settings) -> None:
    if settings.replay_scope not in get_args(ReplayScope):
        raise ConfigError(f"setting 'replay_scope': must be one of {', '.join(get_args(ReplayScope))}")
    if settings.replay_scope == "shared" and settings.effective_database_url.startswith("sqlite"):
        raise ConfigError("setting 'replay_scope': shared needs a PostgreSQL database_url")
    if not 1 <= settings.job_lease_seconds <= 600:
        raise ConfigError("setting 'job_lease_seconds': must be between 1 and 600")
    if not 0.05 <= settings.coherence_poll_seconds <= 1:
        raise ConfigError("setting 'coherence_poll_seconds': must be between 0.05 and 1")


def _validate_tls(cert: Path | None, key: Path | None) -> None:
    """Both files or neither, each a readable file. Whether they hold a matching certificate and key
    is checked when `serve` loads them."""
    if (cert is None) != (key is None):
        raise ConfigError("settings 'tls_cert' and 'tls_key': give both (HTTPS) or neither (HTTP)")
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ConfigError(f"setting {name!r}: {path} is not a readable file")


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _validate_managed_hosts(settings: Settings) -> None:
    """Each of `managed_secret_hosts` is a DNS name, an IP address or a CIDR network."""
    for entry in settings.managed_secret_hosts:
        try:
            ipaddress.ip_network(entry, strict=False)
            continue
        except ValueError:
            pass
        if not is_host_name(entry):
            raise ConfigError(
                f"setting 'managed_secret_hosts': {entry!r} is not a DNS name, IP address or network"
            )


def _validate_instance_tls(settings: Settings) -> None:
    """`tls_instance_ca` excludes operator files; each of `tls_names` is an IP address or DNS name."""
    if settings.tls_instance_ca and settings.tls_cert is not None:
        raise ConfigError(
            "settings 'tls_instance_ca' and 'tls_cert': choose one (the instance CA's certificate, "
            "or your own files)"
        )
    if not settings.tls_names:
        raise ConfigError("setting 'tls_names': at least one DNS name or IP address is required")
    for name in settings.tls_names:
        try:
            ipaddress.ip_address(name)
            continue
        except ValueError:
            pass
        labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
        if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            raise ConfigError(f"setting 'tls_names': {name!r} is not a DNS name or IP address")


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from a TOML file, the OPENKMS_* environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            document = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from exc
        unknown = sorted(set(document) - _FILE_FIELDS)
        if unknown:
            raise ConfigError(f"unknown setting(s) in {config_file}: {', '.join(unknown)}")
        values.update({name: _coerce(name, raw) for name, raw in document.items()})
    for name in _FILE_FIELDS | _SECRET_FIELDS:
        env_value = environ.get(f"OPENKMS_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = _coerce(name, env_value)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw)
    return _validate(replace(Settings(), **values))
