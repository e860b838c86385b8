"""What the server may hold after a crash, from what it acknowledged: a set of possible states per
key, alias and RAM user, replayed from a client's ledger in order.

An acknowledged request (HTTP 200) happened: it is applied to every possible state, and a state in
which the server could not have accepted it is dropped. A request the server refused (an answer
other than 200 and below 500) changed nothing. A request with no answer (a connection reset by a
kill) or a server fault is unknown: each state may or may not have taken it. The server is consistent
when what it holds is one of the possible states of each entity; an empty set means the server
acknowledged something no state allows (a lost change).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

UNKNOWN_VERSION = "?"  # the primary version made by a rotation whose answer was lost


class Outcome(Enum):
    ACKED = "acked"  # answered 200
    REFUSED = "refused"  # answered 4xx: nothing changed
    UNKNOWN = "unknown"  # no answer, or a 5xx: may or may not have taken effect


@dataclass(frozen=True, slots=True)
class Entry:
    """One request a client sent, in the order it sent them, and how it ended."""

    client: int
    seq: int
    action: str
    params: dict[str, str]
    outcome: Outcome
    request_id: str | None = None
    body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    state: str  # Enabled, Disabled, PendingDeletion
    tags: frozenset[tuple[str, str]]
    versions: int
    primary: str  # the primary version's id, or UNKNOWN_VERSION


@dataclass(frozen=True, slots=True)
class UserState:
    exists: bool
    policies: frozenset[str] = frozenset()
    access_keys: frozenset[str] = frozenset()  # known ids
    unknown_access_keys: int = 0  # made by a CreateAccessKey whose answer was lost


@dataclass(frozen=True, slots=True)
class Ciphertext:
    key_id: str
    blob: str
    plaintext: str  # base64, as sent


ABSENT = UserState(exists=False)

_STATE_MOVES = {
    "EnableKey": {"Enabled": "Enabled", "Disabled": "Enabled"},
    "DisableKey": {"Enabled": "Disabled", "Disabled": "Disabled"},
    "ScheduleKeyDeletion": {"Enabled": "PendingDeletion", "Disabled": "PendingDeletion"},
    "CancelKeyDeletion": {"PendingDeletion": "Enabled"},
}


def _key_step(
    action: str, params: dict[str, str], body: dict[str, Any] | None, key: KeyState
) -> KeyState | None:
    """`key` after `action`, or None when the server could not have accepted it in that state. `body`
    is the answer (None when unknown)."""
    if action in _STATE_MOVES:
        moved = _STATE_MOVES[action].get(key.state)
        return None if moved is None else replace(key, state=moved)
    if action == "TagResource":
        tags = dict(key.tags)
        tags.update((tag["TagKey"], tag["TagValue"]) for tag in json.loads(params["Tags"]))
        return replace(key, tags=frozenset(tags.items()))
    if action == "UntagResource":
        gone = set(json.loads(params["TagKeys"]))
        return replace(key, tags=frozenset((k, v) for k, v in key.tags if k not in gone))
    if action == "CreateKeyVersion":
        if key.state != "Enabled":
            return None
        primary = UNKNOWN_VERSION if body is None else str(body["KeyVersion"]["KeyVersionId"])
        return replace(key, versions=key.versions + 1, primary=primary)
    if action in ("Encrypt", "GenerateDataKey"):
        return key if key.state == "Enabled" else None
    raise AssertionError(f"not a key action: {action}")


NO_ALIAS = ""  # the alias does not exist


def _alias_step(action: str, params: dict[str, str], target: str) -> str | None:
    """The alias's key after `action` (NO_ALIAS: gone), or None when it could not have been accepted."""
    if action == "CreateAlias":
        return params["KeyId"] if target == NO_ALIAS else None
    if action == "UpdateAlias":
        return params["KeyId"] if target != NO_ALIAS else None
    if action == "DeleteAlias":
        return NO_ALIAS if target != NO_ALIAS else None
    raise AssertionError(f"not an alias action: {action}")


def _user_step(
    action: str, params: dict[str, str], body: dict[str, Any] | None, user: UserState
) -> UserState | None:
    if action == "CreateUser":
        return None if user.exists else UserState(exists=True)
    if not user.exists:
        return None
    if action == "DeleteUser":
        if user.policies or user.access_keys or user.unknown_access_keys:
            return None
        return ABSENT
    if action == "CreateAccessKey":
        if len(user.access_keys) + user.unknown_access_keys >= 2:
            return None
        if body is None:
            return replace(user, unknown_access_keys=user.unknown_access_keys + 1)
        return replace(user, access_keys=user.access_keys | {str(body["AccessKey"]["AccessKeyId"])})
    if action == "DeleteAccessKey":
        key = params["UserAccessKeyId"]
        return replace(user, access_keys=user.access_keys - {key}) if key in user.access_keys else None
    if action == "AttachPolicyToUser":
        name = params["PolicyName"]
        return None if name in user.policies else replace(user, policies=user.policies | {name})
    if action == "DetachPolicyFromUser":
        name = params["PolicyName"]
        return replace(user, policies=user.policies - {name}) if name in user.policies else None
    raise AssertionError(f"not a user action: {action}")


KEY_ACTIONS = frozenset(
    {*_STATE_MOVES, "TagResource", "UntagResource", "CreateKeyVersion", "Encrypt", "GenerateDataKey"}
)
ALIAS_ACTIONS = frozenset({"CreateAlias", "UpdateAlias", "DeleteAlias"})
USER_ACTIONS = frozenset(
    {
        "CreateUser",
        "DeleteUser",
        "CreateAccessKey",
        "DeleteAccessKey",
        "AttachPolicyToUser",
        "DetachPolicyFromUser",
    }
)


S = TypeVar("S")


# Refusals that say a precondition the model knows did not hold (the key's state, whether the alias
# or user exists, the access-key limit, what is attached): the states in which the request would
# have been accepted are ruled out. Any other refusal says nothing about the state.
PRECONDITION_CODES = frozenset(
    {
        "Forbidden.KeyStateError",
        "Rejected.Disabled",
        "Forbidden.AliasNotFound",
        "Rejected.ResourceExist",
        "EntityNotExist.User",
        "EntityNotExist.User.Policy",
        "EntityNotExist.AccessKey",
        "EntityAlreadyExists.User",
        "EntityAlreadyExists.User.Policy",
        "LimitExceeded.User.AccessKey",
        "DeleteConflict.User.AccessKey",
        "DeleteConflict.User.Policy",
    }
)


def _advance(
    states: frozenset[S], outcome: Outcome, step: Callable[[S], S | None], code: str | None = None
) -> frozenset[S]:
    """The possible states after a request: `step(state)` gives the state after it, None if refused.
    `code`: the error code of a refusal."""
    if outcome is Outcome.REFUSED:
        if code not in PRECONDITION_CODES:
            return states
        # Only as a narrowing: a refusal the model cannot explain keeps every state.
        return frozenset(state for state in states if step(state) is None) or states
    after = frozenset(moved for state in states if (moved := step(state)) is not None)
    return after if outcome is Outcome.ACKED else states | after


@dataclass
class Model:
    """The possible states of the entities one client owns (no other client touches them)."""

    keys: dict[str, frozenset[KeyState]] = field(default_factory=dict)
    aliases: dict[str, frozenset[str]] = field(
        default_factory=dict
    )  # NO_ALIAS: absent = field(default_factory=dict)
    users: dict[str, frozenset[UserState]] = field(default_factory=dict)
    maybe_created: dict[str, Entry] = field(default_factory=dict)  # description -> lost CreateKey
    ciphertexts: list[Ciphertext] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)  # acknowledged, yet no state allowed it

    def apply(self, entry: Entry) -> None:
        action, params = entry.action, entry.params
        body = entry.body if entry.outcome is Outcome.ACKED else None
        if action == "CreateKey":
            if body is not None:
                meta = body["KeyMetadata"]
                initial = KeyState("Enabled", frozenset(), 1, str(meta["PrimaryKeyVersion"]))
                self.keys[str(meta["KeyId"])] = frozenset({initial})
            elif entry.outcome is Outcome.UNKNOWN:
                self.maybe_created[params["Description"]] = entry
            return
        if action == "Encrypt" and body is not None:
            self.ciphertexts.append(
                Ciphertext(params["KeyId"], str(body["CiphertextBlob"]), params["Plaintext"])
            )
        if action in KEY_ACTIONS:
            self.keys[params["KeyId"]] = self._advance(
                entry, self.keys[params["KeyId"]], lambda key: _key_step(action, params, body, key)
            )
        elif action in ALIAS_ACTIONS:
            self.aliases[params["AliasName"]] = self._advance(
                entry,
                self.aliases.get(params["AliasName"], frozenset({NO_ALIAS})),
                lambda target: _alias_step(action, params, target),
            )
        elif action in USER_ACTIONS:
            self.users[params["UserName"]] = self._advance(
                entry,
                self.users.get(params["UserName"], frozenset({ABSENT})),
                lambda user: _user_step(action, params, body, user),
            )

    def _advance(self, entry: Entry, states: frozenset[S], step: Callable[[S], S | None]) -> frozenset[S]:
        code = str((entry.body or {}).get("Code")) if entry.outcome is Outcome.REFUSED else None
        after = _advance(states, entry.outcome, step, code)
        if after:
            return after
        self.contradictions.append(
            f"{entry.action} {entry.params} was acknowledged (RequestId {entry.request_id}) "
            "but no possible state allowed it"
        )
        return states


def replay(entries: Iterable[Entry]) -> Model:
    model = Model()
    for entry in entries:
        model.apply(entry)
    return model
