"""After the kills: compare what the server holds with what its clients' ledgers allow.

Every acknowledged request must be durable: each key's state, tags, versions and primary version,
each alias and each RAM user (access keys, policies) must be one of the possible states of the model
(`model.py`); every acknowledged Encrypt's ciphertext decrypts to its plaintext. No key may be half
made: every listed key describes, has its primary version among its versions, and encrypts, decrypts
and makes data keys once enabled. The audit log verifies and holds a record of every answered request.
Returns the failures found, as sentences, rather than stopping at the first.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.crash.load import call
from tests.crash.model import ABSENT, NO_ALIAS, UNKNOWN_VERSION, Entry, KeyState, Model, Outcome, UserState
from tests.support.server import LiveServer

CHECK_THREADS = 4


class Observer:
    """Signed calls that must succeed, one keep-alive connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __call__(self, action: str, **params: str) -> dict[str, Any]:
        status, body = self.answer(action, **params)
        if status != 200:
            raise AssertionError(f"{action} {params}: {status} {body}")
        return body

    def answer(self, action: str, **params: str) -> tuple[int, dict[str, Any]]:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=60)
            with self._lock:
                self._clients.append(client)
        return call(client, self.url, action, params)

    def paged(self, action: str, outer: str, inner: str, **params: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self(action, PageNumber=str(page), PageSize="100", **params)
            items += body[outer][inner]
            if page * 100 >= int(body["TotalCount"]):
                return items
            page += 1


def check_server(server: LiveServer, models: list[Model], ledgers: list[list[Entry]]) -> list[str]:
    """Everything the model allows, checked against the running `server`; the failures found."""
    observe = Observer(server.url)
    try:
        return _check_server(observe, models, ledgers)
    finally:
        observe.close()


def _check_server(observe: Observer, models: list[Model], ledgers: list[list[Entry]]) -> list[str]:
    failures: list[str] = [problem for model in models for problem in model.contradictions]
    listed = [str(key["KeyId"]) for key in observe.paged("ListKeys", "Keys", "Key")]
    expected: dict[str, frozenset[KeyState]] = {}
    maybe_created: dict[str, Entry] = {}
    for model in models:
        expected.update(model.keys)
        maybe_created.update(model.maybe_created)
    known_versions: dict[str, set[str]] = {}
    for ledger in ledgers:
        for entry in ledger:
            if entry.action == "CreateKeyVersion" and entry.outcome is Outcome.ACKED:
                assert entry.body is not None
                known_versions.setdefault(entry.params["KeyId"], set()).add(
                    entry.body["KeyVersion"]["KeyVersionId"]
                )
    failures += [
        f"key {key_id}: acknowledged CreateKey, but ListKeys lacks it"
        for key_id in expected
        if key_id not in listed
    ]

    def check_key(key_id: str) -> list[str]:
        return _check_key(
            observe, key_id, expected.get(key_id), maybe_created, known_versions.get(key_id, set())
        )

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        for problems in pool.map(check_key, listed):
            failures += problems
        aliases = {
            str(a["AliasName"]): str(a["KeyId"]) for a in observe.paged("ListAliases", "Aliases", "Alias")
        }
        for model in models:
            for name, targets in model.aliases.items():
                if aliases.get(name, NO_ALIAS) not in targets:
                    failures.append(
                        f"alias {name}: points at {aliases.get(name)!r}, possible {sorted(targets)}"
                    )
        users = [(name, states) for model in models for name, states in model.users.items()]
        for problems in pool.map(lambda item: _check_user(observe, *item), users):
            failures += problems
        ciphertexts = [blob for model in models for blob in model.ciphertexts]
        for problems in pool.map(lambda blob: _check_decrypt(observe, blob), ciphertexts):
            failures += problems
    return failures


def _check_key(
    observe: Observer,
    key_id: str,
    possible: frozenset[KeyState] | None,
    maybe_created: dict[str, Entry],
    known_versions: set[str],
) -> list[str]:
    failures: list[str] = []
    status, described = observe.answer("DescribeKey", KeyId=key_id)
    if status != 200:
        return [f"key {key_id}: listed, but DescribeKey answers {status} {described.get('Code')} (half made)"]
    meta = described["KeyMetadata"]
    versions = [
        str(v["KeyVersionId"])
        for v in observe.paged("ListKeyVersions", "KeyVersions", "KeyVersion", KeyId=key_id)
    ]
    primary = str(meta.get("PrimaryKeyVersion") or "")
    if primary not in versions:
        failures.append(
            f"key {key_id}: primary version {primary!r} not among its versions {versions} (half made)"
        )
    for version in versions:
        answer, body = observe.answer("DescribeKeyVersion", KeyId=key_id, KeyVersionId=version)
        if answer != 200:
            failures.append(
                f"key {key_id}: version {version} listed, DescribeKeyVersion answers {answer} {body}"
            )
    tags = frozenset(
        (str(t["TagKey"]), str(t["TagValue"]))
        for t in observe("ListResourceTags", KeyId=key_id)["Tags"]["Tag"]
    )
    seen = KeyState(str(meta["KeyState"]), tags, len(versions), primary)
    if possible is None and str(meta.get("Description", "")) in maybe_created:
        possible = frozenset({KeyState("Enabled", frozenset(), 1, UNKNOWN_VERSION)})  # a lost CreateKey
    if possible is not None:
        if not any(_matches(state, seen) for state in possible):
            failures.append(f"key {key_id}: holds {seen}, the ledger allows {sorted(possible, key=str)}")
        missing = known_versions - set(versions)
        if missing:
            failures.append(f"key {key_id}: acknowledged versions {sorted(missing)} are gone")
    elif str(meta.get("Description", "")).startswith("crash-"):
        failures.append(f"key {key_id}: made by a load client, but no CreateKey in any ledger names it")
    try:
        return failures + _check_usable(observe, key_id, seen.state)
    except AssertionError as refused:  # a call that must succeed did not
        return [*failures, f"key {key_id}: unusable once enabled (half made): {refused}"]


def _matches(state: KeyState, seen: KeyState) -> bool:
    primary_ok = state.primary in (seen.primary, UNKNOWN_VERSION)
    return (state.state, state.tags, state.versions) == (seen.state, seen.tags, seen.versions) and primary_ok


def _check_usable(observe: Observer, key_id: str, state: str) -> list[str]:
    """Enable the key (its state was checked already) and use it: it must work like any key."""
    if state == "PendingDeletion":
        observe("CancelKeyDeletion", KeyId=key_id)
    elif state == "Disabled":
        observe("EnableKey", KeyId=key_id)
    plaintext = base64.b64encode(os.urandom(32)).decode()
    failures: list[str] = []
    blob = observe("Encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    if observe("Decrypt", CiphertextBlob=blob)["Plaintext"] != plaintext:
        failures.append(f"key {key_id}: a fresh Encrypt does not decrypt to its plaintext")
    data_key = observe("GenerateDataKey", KeyId=key_id)
    if observe("Decrypt", CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] != data_key["Plaintext"]:
        failures.append(f"key {key_id}: a data key does not decrypt to itself")
    return failures


def _check_user(observe: Observer, name: str, possible: frozenset[UserState]) -> list[str]:
    status, body = observe.answer("GetUser", UserName=name)
    if status != 200:
        if body.get("Code") != "EntityNotExist.User":
            return [f"user {name}: GetUser answers {status} {body}"]
        seen: UserState = ABSENT
        keys: set[str] = set()
    else:
        keys = {
            str(k["AccessKeyId"]) for k in observe("ListAccessKeys", UserName=name)["AccessKeys"]["AccessKey"]
        }
        policies = {
            str(p["PolicyName"]) for p in observe("ListPoliciesForUser", UserName=name)["Policies"]["Policy"]
        }
        seen = UserState(True, frozenset(policies), frozenset(keys))
    for state in possible:
        if state.exists != seen.exists or state.policies != seen.policies:
            continue
        if state.access_keys <= keys and len(keys - state.access_keys) == state.unknown_access_keys:
            return []
        if not state.exists:
            return []
    return [f"user {name}: holds {seen}, the ledger allows {sorted(possible, key=str)}"]


def _check_decrypt(observe: Observer, blob: Any) -> list[str]:
    status, body = observe.answer("Decrypt", CiphertextBlob=blob.blob)
    if status != 200 or body.get("Plaintext") != blob.plaintext or body.get("KeyId") != blob.key_id:
        return [f"an acknowledged Encrypt under {blob.key_id} does not decrypt: {status} {body.get('Code')}"]
    return []


def verify_audit(server: LiveServer, ledgers: list[list[Entry]]) -> list[str]:
    """`openkms audit verify` on the (stopped) server's data dir, and a record for every answer."""
    env = {**os.environ}
    if server.database_url:
        env["OPENKMS_DATABASE_URL"] = server.database_url
    verified = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "audit", "verify", "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failures: list[str] = []
    if verified.returncode != 0:
        failures.append(f"openkms audit verify failed:\n{verified.stdout}{verified.stderr}")
    elif "note" in verified.stdout:  # something went unchecked: keyed hashes, sealed heads, a ring
        failures.append(f"openkms audit verify left something unchecked:\n{verified.stdout}")
    results: dict[str, str] = {}
    for path in sorted((server.data_dir / "audit").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            record = json.loads(line)
            if record.get("request_id"):  # the request's own record comes first (a batch adds parts)
                results.setdefault(str(record["request_id"]), str(record.get("result")))
    for ledger in ledgers:
        for entry in ledger:
            if entry.request_id is None or entry.outcome is Outcome.UNKNOWN:
                continue
            wanted = "Success" if entry.outcome is Outcome.ACKED else str((entry.body or {}).get("Code"))
            found = results.get(entry.request_id)
            if found != wanted:
                failures.append(
                    f"audit: {entry.action} answered {wanted} (RequestId {entry.request_id}) has "
                    f"{'no record' if found is None else f'a record saying {found}'}"
                )
    return failures
