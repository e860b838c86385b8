"""What the console's Secrets pages make of their forms and queries (console/pages/secret_forms.py):
the ListSecrets filters, the Tags of Create Secret, the stages of a new version, the version a reveal
reads, and the rotation rows a secret shows."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from openkms.console.pages.secret_forms import (
    MAX_TAGS,
    is_managed,
    list_filters,
    page_number,
    rotation_rows,
    secret_url,
    stages_of,
    tags_of,
    tags_param,
    value_request,
)


def test_a_secret_url_keeps_a_name_with_slashes_and_signs() -> None:
    name = "app/db+prod&x=1"
    url = secret_url(name)
    assert urlsplit(url).path == "/secrets/details"
    assert parse_qs(urlsplit(url).query) == {"name": [name]}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 1),
        ("", 1),
        ("0", 1),
        ("3", 3),
        ("-2", 1),
        ("2.5", 1),
        ("٣", 1),
        ("1000000", 1),
        ("999999", 999999),
    ],
)
def test_page_numbers(given: str | None, expected: int) -> None:
    assert page_number(given) == expected


def test_list_filters() -> None:
    assert list_filters("", "") is None
    assert json.loads(list_filters("db/prod", "") or "") == [{"Key": "SecretName", "Values": ["db/prod"]}]
    assert json.loads(list_filters("", "kst-1") or "") == [{"Key": "DKMSInstanceId", "Values": ["kst-1"]}]
    assert json.loads(list_filters("a", "kst-1") or "") == [
        {"Key": "SecretName", "Values": ["a"]},
        {"Key": "DKMSInstanceId", "Values": ["kst-1"]},
    ]


def test_tags_drop_empty_rows_and_keep_one_past_the_limit() -> None:
    assert tags_of(["team", "", ""], ["pay", "", "orphan"]) == [("team", "pay"), ("", "orphan")]
    assert tags_of(["k" * 300], ["v" * 300]) == [("k" * 256, "v" * 256)]
    many = [f"k{number}" for number in range(MAX_TAGS + 5)]
    # One past the limit reaches the API, which refuses it (the console never drops tags silently).
    assert len(tags_of(many, many)) == MAX_TAGS + 1


def test_tags_param() -> None:
    assert tags_param([]) is None
    assert json.loads(tags_param([("team", "pay")]) or "") == [{"TagKey": "team", "TagValue": "pay"}]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", []),
        ("ACSCurrent", ["ACSCurrent"]),
        (" blue ,green\n\nblue\r\nACSCurrent ", ["blue", "green", "ACSCurrent"]),
    ],
)
def test_stages_of(typed: str, expected: list[str]) -> None:
    assert stages_of(typed) == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("id:v2", {"VersionId": "v2"}),
        ("id:a:b", {"VersionId": "a:b"}),
        ("stage:ACSPrevious", {"VersionStage": "ACSPrevious"}),
        ("stage:", {"VersionStage": "ACSCurrent"}),
        ("id:", {"VersionStage": "ACSCurrent"}),
        ("", {"VersionStage": "ACSCurrent"}),
        ("version:v2", {"VersionStage": "ACSCurrent"}),
    ],
)
def test_the_version_a_reveal_reads(choice: str, expected: dict[str, str]) -> None:
    assert value_request(choice) == expected


def test_rotation_rows_show_only_what_describe_answered() -> None:
    assert rotation_rows({"SecretName": "generic", "SecretType": "Generic"}) == []
    assert rotation_rows({"AutomaticRotation": "Disabled"}) == [("field.rotation", "Disabled")]
    assert rotation_rows(
        {
            "NextRotationDate": "2026-12-12T00:00:00Z",
            "AutomaticRotation": "Enabled",
            "RotationInterval": "604800s",
            "LastRotationDate": "",
        }
    ) == [
        ("field.rotation", "Enabled"),
        ("field.rotation_period", "604800s"),
        ("sec.next_rotation", "2026-12-12T00:00:00Z"),
    ]


def test_managed_types() -> None:
    assert is_managed("OpenKMS.PostgreSQL")
    assert not is_managed("Generic")
    assert not is_managed(None)
    assert not is_managed("Rds")  # a type this server does not make
