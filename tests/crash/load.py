"""A mixed write load of several client threads, each keeping a ledger of what it sent and how each
request ended, and the model of what the server may hold (`model.py`).

Each client owns its keys, aliases and RAM users: no other client touches them, so its ledger alone,
in its order, says what each should hold. It sends raw signed RPC requests (tests/support/raw.py)
over one keep-alive connection, chooses actions the model says may succeed, and waits for each
answer before the next (a request can only take effect before the client's next one). A request
refused before it was sent (connection refused while the server restarts) is not in the ledger.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.crash.model import NO_ALIAS, USER_ACTIONS, Entry, Model, Outcome
from tests.support.raw import signed_params
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET

KMS_VERSION = "2016-01-20"
RAM_VERSION = "2015-05-01"
RAM_ACTIONS = USER_ACTIONS  # the RAM writes of the mix (model.py models them)
RAM_READS = frozenset({"GetUser", "ListAccessKeys", "ListPoliciesForUser"})
POLICIES = ("AliyunKMSFullAccess", "AliyunKMSReadOnlyAccess")
TAG_KEYS = ("team", "env", "owner", "tier")
ACTIVE_KEYS = 12  # a client works on its newest keys, so each sees many changes
MAX_VERSIONS = 6
MAX_USERS = 6
TIMEOUT = 120.0  # seconds: no request should ever wait this long, so only kills end one unanswered


def call(client: httpx.Client, url: str, action: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """One signed request; (HTTP status, JSON body). Raises httpx errors when there is no answer."""
    version = RAM_VERSION if action in RAM_ACTIONS | RAM_READS else KMS_VERSION
    signed = signed_params(action, ACCESS_KEY_ID, ACCESS_KEY_SECRET, version=version, **params)
    response = client.post(url + "/", data=signed)
    return response.status_code, response.json()


@dataclass
class Client:
    """One load client: run it in a thread; it stops when `stop` is set."""

    index: int
    url: str
    instance_id: str
    seed: int
    stop: threading.Event
    ledger: list[Entry] = field(default_factory=list)
    model: Model = field(default_factory=Model)
    timed_out: bool = False  # a request timed out: the client stopped (see TIMEOUT)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed * 1000 + self.index)
        self._key_order: list[str] = []  # every acknowledged key, oldest first
        self._made_users: list[str] = []
        self._counter = 0

    def run(self) -> None:
        try:
            with httpx.Client(timeout=TIMEOUT) as http:
                while not self.stop.is_set():
                    action, params = self._choose()
                    if not self.send(http, action, params):
                        return
        except BaseException as exc:  # reported by the test
            self.error = exc

    def send(self, http: httpx.Client, action: str, params: dict[str, str]) -> bool:
        try:
            status, body = call(http, self.url, action, params)
        except httpx.ConnectError:
            time.sleep(0.05)  # never sent: the server is restarting
            return True
        except httpx.TimeoutException:
            # The request may still run later, after a next one: stop, so the ledger stays in order.
            self._record(action, params, Outcome.UNKNOWN, None, None)
            self.timed_out = True
            return False
        except httpx.TransportError:
            self._record(action, params, Outcome.UNKNOWN, None, None)
            return True
        if status == 200:
            self._record(action, params, Outcome.ACKED, str(body["RequestId"]), body)
        elif status < 500:
            self._record(action, params, Outcome.REFUSED, body.get("RequestId"), body)
        else:
            self._record(action, params, Outcome.UNKNOWN, body.get("RequestId"), body)
        return True

    def _record(
        self, action: str, params: dict[str, str], outcome: Outcome, request_id: str | None, body: Any
    ) -> None:
        entry = Entry(self.index, len(self.ledger), action, params, outcome, request_id, body)
        self.ledger.append(entry)
        self.model.apply(entry)
        if action == "CreateKey" and outcome is Outcome.ACKED:
            self._key_order.append(str(body["KeyMetadata"]["KeyId"]))

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-c{self.index}-s{self.seed}-{self._counter}"

    # ---- choosing the next request -----------------------------------------------------------

    def _choose(self) -> tuple[str, dict[str, str]]:
        keys = self._key_order[-ACTIVE_KEYS:]
        if len(keys) < 3 or self._random.random() < 0.03:
            return "CreateKey", {"DKMSInstanceId": self.instance_id, "Description": self._name("crash")}
        roll = self._random.random()
        if roll < 0.12:
            return self._ram()
        if roll < 0.24:
            return self._alias(keys)
        key_id = self._random.choice(keys)
        states = self.model.keys[key_id]
        possible = {state.state for state in states}
        choices: list[Callable[[], tuple[str, dict[str, str]]]] = [
            lambda: self._tag(key_id, states),
        ]
        if "Enabled" in possible:
            choices += [
                lambda: self._encrypt(key_id),
                lambda: self._encrypt(key_id),
                lambda: ("DisableKey", {"KeyId": key_id}),
            ]
            if max(state.versions for state in states) < MAX_VERSIONS:
                choices.append(lambda: ("CreateKeyVersion", {"KeyId": key_id}))
        if "Disabled" in possible:
            choices.append(lambda: ("EnableKey", {"KeyId": key_id}))
        if possible & {"Enabled", "Disabled"}:
            choices.append(lambda: ("ScheduleKeyDeletion", {"KeyId": key_id, "PendingWindowInDays": "7"}))
        if "PendingDeletion" in possible:
            choices += [lambda: ("CancelKeyDeletion", {"KeyId": key_id})] * 2
        return self._random.choice(choices)()

    def _encrypt(self, key_id: str) -> tuple[str, dict[str, str]]:
        plaintext = base64.b64encode(self._random.randbytes(self._random.randint(1, 64))).decode()
        return "Encrypt", {"KeyId": key_id, "Plaintext": plaintext}

    def _tag(self, key_id: str, states: Any) -> tuple[str, dict[str, str]]:
        tag = self._random.choice(TAG_KEYS)
        if self._random.random() < 0.35 and any(state.tags for state in states):
            return "UntagResource", {"KeyId": key_id, "TagKeys": json.dumps([tag])}
        value = f"v{self._random.randint(0, 99)}"
        return "TagResource", {"KeyId": key_id, "Tags": json.dumps([{"TagKey": tag, "TagValue": value}])}

    def _alias(self, keys: list[str]) -> tuple[str, dict[str, str]]:
        existing = [name for name, targets in self.model.aliases.items() if targets != {NO_ALIAS}]
        roll = self._random.random()
        if existing and roll < 0.4:
            return "UpdateAlias", {
                "AliasName": self._random.choice(existing),
                "KeyId": self._random.choice(keys),
            }
        if existing and roll < 0.65:
            return "DeleteAlias", {"AliasName": self._random.choice(existing)}
        return "CreateAlias", {
            "AliasName": "alias/" + self._name("crash"),
            "KeyId": self._random.choice(keys),
        }

    def _ram(self) -> tuple[str, dict[str, str]]:
        users = [name for name in self._made_users if any(s.exists for s in self.model.users.get(name, ()))]
        if len(users) < MAX_USERS and (not users or self._random.random() < 0.15):
            name = self._name("user")
            self._made_users.append(name)
            return "CreateUser", {"UserName": name}
        name = self._random.choice(users)
        states = self.model.users[name]
        keys = sorted({key for state in states for key in state.access_keys})
        policies = sorted({policy for state in states for policy in state.policies})
        choices: list[tuple[str, dict[str, str]]] = []
        if any(len(state.access_keys) + state.unknown_access_keys < 2 for state in states):
            choices.append(("CreateAccessKey", {"UserName": name}))
        choices += [
            ("AttachPolicyToUser", {"UserName": name, "PolicyType": "System", "PolicyName": policy})
            for policy in POLICIES
            if policy not in policies
        ]
        choices += [
            ("DetachPolicyFromUser", {"UserName": name, "PolicyType": "System", "PolicyName": policy})
            for policy in policies
        ]
        choices += [("DeleteAccessKey", {"UserName": name, "UserAccessKeyId": key}) for key in keys]
        if not keys and not policies:
            choices.append(("DeleteUser", {"UserName": name}))
        return self._random.choice(choices)


def summary(clients: list[Client]) -> dict[str, int]:
    counts = {outcome.value: 0 for outcome in Outcome}
    for client in clients:
        for entry in client.ledger:
            counts[entry.outcome.value] += 1
    return counts
