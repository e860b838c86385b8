"""The crash checks can fail: against a live server (SQLite), a ledger that claims an acknowledged
change the server never made, a key version removed behind the server's back, or an answer with no
audit record is each reported; a true ledger is not."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.crash.check import check_server, verify_audit
from tests.crash.load import Client, call
from tests.crash.model import Entry, Outcome
from tests.support.server import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data").start()
    yield live
    live.stop()


def drive(server: LiveServer) -> tuple[Client, str]:
    """A client that made a key, tagged, rotated and encrypted with it, all acknowledged."""
    with httpx.Client(timeout=60) as http:
        _, body = call(http, server.url, "ListKmsInstances", {})
        instance = str(body["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])
        client = Client(0, server.url, instance, 1, threading.Event())
        client.send(http, "CreateKey", {"DKMSInstanceId": instance, "Description": "crash-c0-check"})
        key_id = str(client.ledger[0].body["KeyMetadata"]["KeyId"])  # type: ignore[index]
        tags = json.dumps([{"TagKey": "env", "TagValue": "prod"}])
        client.send(http, "TagResource", {"KeyId": key_id, "Tags": tags})
        client.send(http, "CreateKeyVersion", {"KeyId": key_id})
        client.send(http, "Encrypt", {"KeyId": key_id, "Plaintext": "aGVsbG8="})
        client.send(http, "CreateAlias", {"AliasName": "alias/crash-check", "KeyId": key_id})
        client.send(http, "CreateUser", {"UserName": "crash-check"})
    assert [entry.outcome for entry in client.ledger] == [Outcome.ACKED] * 6
    return client, key_id


def claim(client: Client, action: str, **params: str) -> None:
    """Put an acknowledged request the server never saw into the client's ledger."""
    entry = Entry(0, len(client.ledger), action, params, Outcome.ACKED, str(uuid.uuid4()).upper(), {})
    client.ledger.append(entry)
    client.model.apply(entry)


def test_a_true_ledger_passes(server: LiveServer) -> None:
    client, _ = drive(server)
    assert check_server(server, [client.model], [client.ledger]) == []
    assert verify_audit(server, [client.ledger]) == []


def test_a_lost_acknowledged_change_is_found(server: LiveServer) -> None:
    client, key_id = drive(server)
    claim(client, "UntagResource", KeyId=key_id, TagKeys='["env"]')
    claim(client, "DeleteAlias", AliasName="alias/crash-check")
    claim(
        client,
        "AttachPolicyToUser",
        UserName="crash-check",
        PolicyType="System",
        PolicyName="AliyunKMSFullAccess",
    )
    failures = check_server(server, [client.model], [client.ledger])
    assert len(failures) == 3, failures
    assert f"key {key_id}: holds" in failures[0] and "('env', 'prod')" in failures[0]
    assert failures[1].startswith("alias alias/crash-check: points at")
    assert failures[2].startswith("user crash-check: holds")


def test_a_version_lost_behind_the_servers_back_is_found(server: LiveServer) -> None:
    client, key_id = drive(server)
    server.stop()
    with sqlite3.connect(server.data_dir / "openkms.db") as db:
        newest = db.execute("SELECT max(seq) FROM key_versions WHERE key_id = ?", (key_id,)).fetchone()[0]
        db.execute("DELETE FROM key_versions WHERE key_id = ? AND seq = ?", (key_id, newest))
    db.close()
    server.start()
    failures = check_server(server, [client.model], [client.ledger])
    assert any(f"key {key_id}: primary version" in failure for failure in failures), failures


def test_an_answer_without_an_audit_record_is_found(server: LiveServer) -> None:
    client, key_id = drive(server)
    claim(client, "TagResource", KeyId=key_id, Tags='[{"TagKey": "env", "TagValue": "prod"}]')
    failures = verify_audit(server, [client.ledger])
    assert len(failures) == 1 and "has no record" in failures[0], failures
