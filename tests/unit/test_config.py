"""Settings: defaults < TOML < OPENKMS_* environment < flags; bad values fail with one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.config import ConfigError, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.regions == ("cn-hangzhou",)
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("openkms-data/openkms.db")


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "openkms.toml"
    config.write_text(
        'port = 7000\nregions = ["cn-shanghai", "cn-beijing"]\nworkers = 3\nseal = "passphrase"\n'
    )
    settings = load_settings(
        config,
        environ={"OPENKMS_PORT": "7100", "OPENKMS_WORKERS": "2"},
        overrides={"port": 7200, "host": None},
    )
    assert (settings.port, settings.workers, settings.seal) == (7200, 2, "passphrase")
    assert settings.regions == ("cn-shanghai", "cn-beijing")
    assert settings.default_region == "cn-shanghai"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("colour = 'blue'\n", "unknown setting"),
        ("port = 70000\n", "'port'"),
        ("port = 'many'\n", "'port'"),
        ("regions = []\n", "'regions'"),
        ("regions = ['Hangzhou!']\n", "'regions'"),
        ("seal = 'hope'\n", "'seal'"),
        ("workers = 0\n", "'workers'"),
        ("audit_fsync = 'sometimes'\n", "'audit_fsync'"),
        ("root_access_key_secret = 'x'\n", "unknown setting"),
        ("port = \n", "not valid TOML"),
        ("header_timeout_seconds = 0\n", "'header_timeout_seconds'"),
        ("body_timeout_seconds = 'slow'\n", "'body_timeout_seconds'"),
        ("max_connections = 0\n", "'max_connections'"),
        ("max_header_bytes = 100\n", "'max_header_bytes'"),
        ("max_headers = 5000\n", "'max_headers'"),
        ("max_body_bytes = true\n", "'max_body_bytes'"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, document: str, fragment: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(document)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config, environ={})


def test_root_access_key_needs_both_halves() -> None:
    with pytest.raises(ConfigError, match="set together"):
        load_settings(environ={"OPENKMS_ROOT_ACCESS_KEY_ID": "LTAIx"})


def test_redacted_dump_hides_secrets_and_passwords() -> None:
    settings = load_settings(
        environ={
            "OPENKMS_DATABASE_URL": "postgresql+psycopg://kms:hunter2@db/kms",
            "OPENKMS_UNSEAL_PASSPHRASE": "open sesame",
            "OPENKMS_ROOT_ACCESS_KEY_ID": "LTAIexample",
            "OPENKMS_ROOT_ACCESS_KEY_SECRET": "very-secret",
        }
    )
    dump = str(settings.redacted())
    for secret in ("hunter2", "open sesame", "very-secret"):
        assert secret not in dump
        assert secret not in repr(settings)
    assert "***" in dump


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_client_limits_have_defaults_and_are_dumped_for_the_workers(tmp_path: Path) -> None:
    """`serve` hands the settings to its workers through the dump: every limit must be in it."""
    defaults = load_settings(environ={})
    assert (defaults.header_timeout_seconds, defaults.body_timeout_seconds) == (10.0, 30.0)
    assert (defaults.max_connections, defaults.max_header_bytes, defaults.max_headers) == (1000, 65536, 100)
    assert defaults.max_body_bytes == 1 << 20
    config = tmp_path / "limits.toml"
    config.write_text("header_timeout_seconds = 2.5\nmax_body_bytes = 4096\n")
    settings = load_settings(config, environ={"OPENKMS_MAX_CONNECTIONS": "50"})
    dump = settings.redacted()
    assert (dump["header_timeout_seconds"], dump["max_body_bytes"], dump["max_connections"]) == (
        2.5,
        4096,
        50,
    )
    environ = {f"OPENKMS_{name.upper()}": str(value) for name, value in dump.items() if name != "regions"}
    assert load_settings(environ=environ).max_body_bytes == 4096


def test_tenant_limits_default_and_come_from_file_environment_and_flags(tmp_path: Path) -> None:
    defaults = Settings()
    assert (
        defaults.rate_crypto_per_account,
        defaults.rate_management_per_account,
        defaults.rate_ram_per_account,
    ) == (2000, 200, 100)
    assert (
        defaults.rate_crypto_per_access_key,
        defaults.rate_management_per_access_key,
        defaults.rate_ram_per_access_key,
    ) == (2000, 200, 100)
    assert (defaults.rate_burst_seconds, defaults.nonce_account_share) == (2.0, 0.125)
    assert defaults.timestamp_future_skew_seconds == 300
    config = tmp_path / "openkms.toml"
    config.write_text("rate_crypto_per_account = 10\nnonce_account_share = 0.5\nrate_burst_seconds = 2\n")
    settings = load_settings(
        config,
        environ={"OPENKMS_RATE_CRYPTO_PER_ACCOUNT": "20", "OPENKMS_TIMESTAMP_FUTURE_SKEW_SECONDS": "60"},
        overrides={"rate_ram_per_access_key": "0"},
    )
    assert (settings.rate_crypto_per_account, settings.nonce_account_share) == (20, 0.5)
    assert (settings.rate_burst_seconds, settings.timestamp_future_skew_seconds) == (2.0, 60)
    assert settings.rate_ram_per_access_key == 0  # no limit
    dump = settings.redacted()
    assert (dump["rate_crypto_per_account"], dump["nonce_account_share"]) == (20, 0.5)
    assert (dump["rate_ram_per_access_key"], dump["timestamp_future_skew_seconds"]) == (0, 60)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("rate_crypto_per_account = -1\n", "'rate_crypto_per_account'"),
        ("rate_ram_per_access_key = 'fast'\n", "'rate_ram_per_access_key'"),
        ("rate_burst_seconds = 0\n", "'rate_burst_seconds'"),
        ("nonce_account_share = 0\n", "'nonce_account_share'"),
        ("nonce_account_share = 1.5\n", "'nonce_account_share'"),
        ("timestamp_future_skew_seconds = 901\n", "'timestamp_future_skew_seconds'"),
    ],
)
def test_bad_tenant_limits_are_named(tmp_path: Path, document: str, fragment: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(document)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config, environ={})


def test_managed_secret_hosts_are_off_by_default_and_checked() -> None:
    assert load_settings(environ={}).managed_secret_hosts == ()
    listed = load_settings(environ={"OPENKMS_MANAGED_SECRET_HOSTS": " db.internal, 10.0.0.0/8 ,::1,db_1"})
    assert listed.managed_secret_hosts == ("db.internal", "10.0.0.0/8", "::1", "db_1")
    assert listed.redacted()["managed_secret_hosts"] == "db.internal,10.0.0.0/8,::1,db_1"
    for bad in ("/var/run/postgresql", "user@db", "db name"):
        with pytest.raises(ConfigError, match="managed_secret_hosts"):
            load_settings(environ={"OPENKMS_MANAGED_SECRET_HOSTS": bad})
