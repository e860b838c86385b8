"""The pure rules of managed secret rotation: RotationInterval, the OpenKMS.PostgreSQL ExtendedConfig
and value, CreateSecret's checks, and the password rules of a rotation."""

from __future__ import annotations

import json
import string

import pytest

from openkms.domain.random_password import random_password
from openkms.domain.secret_rotation import (
    PASSWORD_RULES,
    Credentials,
    check_managed,
    host_allowed,
    parse_credentials,
    parse_interval,
    parse_postgres_target,
    render_credentials,
    render_interval,
)
from openkms.domain.secrets import SecretDataType, SecretType
from openkms.errors import InvalidArgument, MissingParameter
from openkms.secret import SecretBytes


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("7d", 604800),
        ("604800s", 604800),
        ("6h", 21600),
        ("360m", 21600),
        ("365d", 31536000),
        ("8760h", 31536000),
    ],
)
def test_intervals(raw: str, seconds: int) -> None:
    assert parse_interval(raw) == seconds
    assert render_interval(seconds) == f"{seconds}s"


@pytest.mark.parametrize("raw", ["", "7", "d", "7w", "-1d", "5h", "366d", "1.5d", "7 d x"])
def test_bad_intervals(raw: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_interval(raw)
    assert caught.value.parameter == "RotationInterval"


def test_extended_config_defaults_and_round_trip() -> None:
    target = parse_postgres_target('{"Host": "db.internal", "AccountName": "app"}')
    assert (target.port, target.dbname, target.sslmode, target.master_secret) == (
        5432,
        "postgres",
        "prefer",
        None,
    )
    again = parse_postgres_target(target.to_json())
    assert again == target
    full = parse_postgres_target(
        json.dumps({"Host": "h", "Port": "6432", "DBName": "d", "AccountName": "a", "MasterSecretName": "m",
                    "SSLMode": "require", "CustomData": {"k": "v"}})
    )  # fmt: skip
    assert (full.port, full.master_secret, full.sslmode, full.custom_data) == (
        6432,
        "m",
        "require",
        {"k": "v"},
    )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "[]",
        "not json",
        '{"AccountName": "a"}',
        '{"Host": "h"}',
        '{"Host": "h", "AccountName": "a", "Port": 0}',
        '{"Host": "h", "AccountName": "a", "Port": true}',
        '{"Host": "h", "AccountName": "a", "SSLMode": "maybe"}',
        '{"Host": "h", "AccountName": "a", "Other": 1}',
        '{"Host": "h", "AccountName": "a", "CustomData": []}',
        '{"Host": "h", "AccountName": "' + "a" * 64 + '"}',
        '{"Host": "h", "AccountName": "a", "Pad": "' + "x" * 1024 + '"}',
    ],
)
def test_bad_extended_config(raw: str | None) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_postgres_target(raw)
    assert caught.value.parameter == "ExtendedConfig"


def test_credentials_never_quote_the_value() -> None:
    made = render_credentials(Credentials("app", SecretBytes(b'p@ss"word')))
    assert parse_credentials(made) == Credentials("app", SecretBytes(b'p@ss"word'))
    for bad in (
        b"p@ss",
        b"{}",
        b'{"AccountName": "a"}',
        b'{"AccountName": "", "AccountPassword": "x"}',
        b"\xff",
    ):
        with pytest.raises(InvalidArgument) as caught:
            parse_credentials(SecretBytes(bad))
        assert "p@ss" not in caught.value.message


def _check(**changed: object) -> object:
    fields: dict[str, object] = {
        "secret_type": SecretType.POSTGRESQL,
        "data": SecretBytes(b'{"AccountName": "app", "AccountPassword": "x"}'),
        "data_type": SecretDataType.TEXT,
        "extended_config": '{"Host": "h", "AccountName": "app"}',
        "automatic_rotation": False,
        "rotation_interval": None,
        **changed,
    }
    return check_managed(**fields)  # type: ignore[arg-type]


def test_check_managed() -> None:
    settings = _check(automatic_rotation=True, rotation_interval=86400)
    assert settings.automatic_rotation and settings.rotation_interval == 86400  # type: ignore[attr-defined]
    assert json.loads(settings.extended_config)["Port"] == 5432  # type: ignore[attr-defined]
    with pytest.raises(MissingParameter):
        _check(automatic_rotation=True)
    with pytest.raises(InvalidArgument):
        _check(data_type=SecretDataType.BINARY)
    with pytest.raises(InvalidArgument):
        _check(data=SecretBytes(b'{"AccountName": "other", "AccountPassword": "x"}'))
    generic = _check(secret_type=SecretType.GENERIC, data=SecretBytes(b"anything"), extended_config="ignored")
    assert generic.extended_config is None  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument):
        _check(secret_type=SecretType.GENERIC, automatic_rotation=True, rotation_interval=86400)


def test_rotation_passwords_need_no_quoting() -> None:
    for _ in range(50):
        password = random_password(PASSWORD_RULES)
        assert len(password) == 32
        assert not set(password) & set("\"'`\\/@:?#&%=;$ ")
        assert set(password) & set(string.ascii_lowercase) and set(password) & set(string.digits)


def _host(host: str, **more: object) -> str:
    return json.dumps({"Host": host, "AccountName": "app", **more})


@pytest.mark.parametrize(
    ("host", "kept"),
    [
        ("db.internal", "db.internal"),
        ("DB.Example.COM", "db.example.com"),
        ("10.0.0.5", "10.0.0.5"),
        ("::1", "::1"),
    ],
)
def test_a_host_is_one_name_or_one_address(host: str, kept: str) -> None:
    assert parse_postgres_target(_host(host)).host == kept


@pytest.mark.parametrize(
    "host",
    [
        "/var/run/postgresql",
        "@/tmp",
        "a,b",
        "10.0.0.1,10.0.0.2",
        "user@db",
        "db name",
        "db=x",
        "-db",
        "db..x",
    ],
)
def test_hosts_libpq_would_read_as_more_are_refused(host: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_postgres_target(_host(host))


@pytest.mark.parametrize("dbname", ["host=evil dbname=app", "postgresql://evil/app", "postgres://evil/app"])
def test_a_dbname_that_is_a_connection_string_is_refused(dbname: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_postgres_target(_host("db.internal", DBName=dbname))


def test_the_operators_host_list() -> None:
    allowed = ("db.internal", "10.0.0.0/8", "192.168.1.7", "2001:db8::/32")
    assert host_allowed("db.internal", allowed) and host_allowed("DB.internal", allowed)
    assert host_allowed("db.internal.", allowed) and host_allowed("db.internal", ("db.internal.",))
    assert host_allowed("10.200.3.4", allowed) and host_allowed("192.168.1.7", allowed)
    assert host_allowed("2001:db8::5", allowed)
    assert not host_allowed("db.internal.evil", allowed) and not host_allowed("192.168.1.8", allowed)
    assert not host_allowed("11.0.0.1", allowed) and not host_allowed("db.internal", ())
