"""The stage rules of secret versions (domain/secrets.py): PutSecretValue and UpdateSecretVersionStage."""

from __future__ import annotations

import pytest

from openkms.domain.secrets import (
    check_secret_name,
    parse_secret_ref,
    secret_arn,
    stages_after_move,
    stages_after_put,
)
from openkms.errors import InvalidArgument


def test_a_new_current_version_makes_the_old_one_previous() -> None:
    assert stages_after_put({}, "v1", None) == {"v1": ["ACSCurrent"]}
    two = stages_after_put({"v1": ["ACSCurrent"]}, "v2", None)
    assert two == {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]}
    three = stages_after_put(two, "v3", ["ACSCurrent"])
    assert three == {"v1": [], "v2": ["ACSPrevious"], "v3": ["ACSCurrent"]}


def test_custom_stages_move_alone() -> None:
    current = {"v1": ["ACSPrevious"], "v2": ["ACSCurrent", "Blue"]}
    assert stages_after_put(current, "v3", ["Blue"]) == {
        "v1": ["ACSPrevious"],
        "v2": ["ACSCurrent"],
        "v3": ["Blue"],
    }
    both = stages_after_put(current, "v3", ["ACSCurrent", "ACSPrevious"])
    assert both == {"v1": [], "v2": ["Blue"], "v3": ["ACSCurrent", "ACSPrevious"]}
    with pytest.raises(InvalidArgument):
        stages_after_put(current, "v3", ["bad stage!"])
    with pytest.raises(InvalidArgument):
        stages_after_put(current, "v3", [f"s{i}" for i in range(11)])


def test_moving_current_swaps_with_previous() -> None:
    current = {"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]}
    back = stages_after_move(current, "ACSCurrent", "v1", "v2")
    assert back == {"v1": ["ACSCurrent"], "v2": ["ACSPrevious"]}
    assert stages_after_move(back, "Green", "v2", None) == {
        "v1": ["ACSCurrent"],
        "v2": ["ACSPrevious", "Green"],
    }
    assert stages_after_move({"v1": ["Green"]}, "Green", None, "v1") == {"v1": []}


@pytest.mark.parametrize(
    ("stage", "move_to", "remove_from"),
    [
        ("ACSCurrent", None, "v2"),  # system stages only move
        ("ACSPrevious", None, "v1"),
        ("Green", None, None),  # nothing to do
        ("ACSCurrent", "v9", "v2"),  # no such version
        ("ACSCurrent", "v1", "v1"),  # v1 does not hold it
        ("ACSCurrent", "v1", None),  # v2 holds it: name it
    ],
)
def test_moves_that_do_not_fit_are_refused(stage: str, move_to: str | None, remove_from: str | None) -> None:
    with pytest.raises(InvalidArgument):
        stages_after_move({"v1": ["ACSPrevious"], "v2": ["ACSCurrent"]}, stage, move_to, remove_from)


def test_names_and_arns() -> None:
    arn = secret_arn("cn-hangzhou", "1234567890123456", "db/main")
    assert arn == "acs:kms:cn-hangzhou:1234567890123456:secret/db/main"
    assert parse_secret_ref(arn) == ("db/main", "cn-hangzhou", "1234567890123456")
    assert parse_secret_ref("db/main") == ("db/main", None, None)
    for bad in ("", "acs/x", "a b", "x" * 193, "ok\n"):
        with pytest.raises(InvalidArgument):
            check_secret_name(bad)
    with pytest.raises(InvalidArgument):
        parse_secret_ref("acs:kms:cn-hangzhou:123:key/abc")
