"""The crash model (tests/crash/model.py): an unknown request may or may not have happened, an
acknowledged one must have, a refused one changed nothing."""

from __future__ import annotations

import json
from typing import Any

from tests.crash.model import ABSENT, NO_ALIAS, UNKNOWN_VERSION, Entry, KeyState, Outcome, UserState, replay

KEY = "key-1"


def entry(
    action: str, outcome: Outcome = Outcome.ACKED, body: dict[str, Any] | None = None, **params: str
) -> Entry:
    return Entry(0, 0, action, params, outcome, "req", body if outcome is not Outcome.UNKNOWN else None)


CREATED = entry("CreateKey", body={"KeyMetadata": {"KeyId": KEY, "PrimaryKeyVersion": "v1"}}, Description="d")
INITIAL = KeyState("Enabled", frozenset(), 1, "v1")


def tag(outcome: Outcome, value: str) -> Entry:
    return entry("TagResource", outcome, KeyId=KEY, Tags=json.dumps([{"TagKey": "env", "TagValue": value}]))


def test_an_acknowledged_change_is_the_only_possibility() -> None:
    model = replay([CREATED, tag(Outcome.ACKED, "a"), entry("DisableKey", KeyId=KEY)])
    assert model.keys[KEY] == {KeyState("Disabled", frozenset({("env", "a")}), 1, "v1")}
    assert not model.contradictions


def test_an_unknown_change_may_or_may_not_have_happened() -> None:
    model = replay(
        [CREATED, tag(Outcome.UNKNOWN, "a"), entry("CreateKeyVersion", Outcome.UNKNOWN, KeyId=KEY)]
    )
    tagged = frozenset({("env", "a")})
    assert model.keys[KEY] == {
        INITIAL,
        KeyState("Enabled", tagged, 1, "v1"),
        KeyState("Enabled", frozenset(), 2, UNKNOWN_VERSION),
        KeyState("Enabled", tagged, 2, UNKNOWN_VERSION),
    }


def test_a_refused_request_changes_nothing() -> None:
    model = replay([CREATED, tag(Outcome.REFUSED, "a"), entry("DisableKey", Outcome.REFUSED, KeyId=KEY)])
    assert model.keys[KEY] == {INITIAL}


def test_an_acknowledgement_rules_out_the_states_that_could_not_take_it() -> None:
    # After an unknown ScheduleKeyDeletion, an acknowledged Encrypt says the schedule never happened.
    schedule = entry("ScheduleKeyDeletion", Outcome.UNKNOWN, KeyId=KEY, PendingWindowInDays="7")
    model = replay(
        [CREATED, schedule, entry("Encrypt", body={"CiphertextBlob": "c"}, KeyId=KEY, Plaintext="p")]
    )
    assert model.keys[KEY] == {INITIAL}
    assert [(c.key_id, c.blob, c.plaintext) for c in model.ciphertexts] == [(KEY, "c", "p")]


def test_an_acknowledgement_no_state_allows_is_a_contradiction() -> None:
    model = replay([CREATED, entry("CancelKeyDeletion", KeyId=KEY)])
    assert len(model.contradictions) == 1 and "CancelKeyDeletion" in model.contradictions[0]


def test_aliases_and_users() -> None:
    model = replay(
        [
            CREATED,
            entry("CreateAlias", AliasName="alias/a", KeyId=KEY),
            entry("DeleteAlias", Outcome.UNKNOWN, AliasName="alias/a"),
            entry("CreateUser", UserName="u"),
            entry("CreateAccessKey", Outcome.UNKNOWN, UserName="u"),
            entry("CreateAccessKey", body={"AccessKey": {"AccessKeyId": "ak"}}, UserName="u"),
            entry("CreateUser", Outcome.UNKNOWN, UserName="v"),
        ]
    )
    assert model.aliases["alias/a"] == {KEY, NO_ALIAS}
    assert model.users["u"] == {
        UserState(True, access_keys=frozenset({"ak"})),
        UserState(True, access_keys=frozenset({"ak"}), unknown_access_keys=1),
    }
    assert model.users["v"] == {ABSENT, UserState(True)}


def test_a_lost_create_key_is_remembered_by_its_description() -> None:
    model = replay([entry("CreateKey", Outcome.UNKNOWN, Description="crash-c0-1")])
    assert list(model.maybe_created) == ["crash-c0-1"] and not model.keys


def refused(action: str, code: str, **params: str) -> Entry:
    return Entry(0, 0, action, params, Outcome.REFUSED, "req", {"Code": code})


def test_a_refusal_for_a_known_precondition_rules_out_the_states_that_would_have_accepted() -> None:
    disable = entry("DisableKey", Outcome.UNKNOWN, KeyId=KEY)
    model = replay([CREATED, disable, refused("Encrypt", "Rejected.Disabled", KeyId=KEY, Plaintext="p")])
    assert {state.state for state in model.keys[KEY]} == {"Disabled"}


def test_any_other_refusal_rules_out_nothing() -> None:
    disable = entry("DisableKey", Outcome.UNKNOWN, KeyId=KEY)
    model = replay([CREATED, disable, refused("Encrypt", "InternalFailure", KeyId=KEY, Plaintext="p")])
    assert {state.state for state in model.keys[KEY]} == {"Enabled", "Disabled"}
    # A refusal no state explains keeps them all rather than none.
    model = replay([CREATED, refused("EnableKey", "Forbidden.KeyStateError", KeyId=KEY)])
    assert model.keys[KEY] == {INITIAL} and not model.contradictions
