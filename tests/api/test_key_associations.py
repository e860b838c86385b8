"""Usage tracking and key association detection (F8) against a live server, and the batched
recorder against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openkms.repository.database import Database
from openkms.repository.migrate import upgrade_to_head
from openkms.service.context import Principal
from openkms.service.usage import UsageRecorder
from openkms.types import AccountId
from tests.api.test_identities import as_user, new_user
from tests.support.products import Caller, DeniedError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def root(server: LiveServer) -> Callable[[str], Caller]:
    def make(product: str) -> Caller:
        return Caller(product, server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)

    return make


def wait_for(kms: Caller, key_id: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        answer = kms.call("DescribeKeyAssociations", KeyId=key_id)
        if answer["Status"] != "Running" or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_detection_lists_who_used_the_key(server: LiveServer, root: Callable[[str], Caller]) -> None:
    kms, ram = root("kms"), root("ram")
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    unused = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    assert kms.call("DescribeKeyAssociations", KeyId=key_id)["Status"] == "NotStarted"

    user, access_key_id, secret = new_user(ram, "AliyunKMSCryptoUserAccess")
    user_kms = as_user(server, "kms", access_key_id, secret)
    before = datetime.now(UTC).replace(microsecond=0)
    for _ in range(3):
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext="x")["CiphertextBlob"]
    user_kms.call("Decrypt", CiphertextBlob=blob)
    kms.call("DescribeKey", KeyId=key_id)  # not a use of the key
    with pytest.raises(DeniedError):
        user_kms.call("DisableKey", KeyId=key_id)  # refused calls are not uses either

    started = kms.call("StartKeyAssociationDetection", KeyId=key_id)
    assert started["Status"] == "Running" and started["DetectionId"]
    done = wait_for(kms, key_id)
    assert done["Status"] == "Succeeded" and done["DetectionId"] == started["DetectionId"]
    found = {item["Principal"]: item for item in done["Associations"]["Association"]}  # type: ignore[index]
    account = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Arn"].split(":")[3]
    assert set(found) == {f"acs:ram::{account}:root", f"acs:ram::{account}:user/{user}"}
    assert found[f"acs:ram::{account}:root"]["CallCount"] == 3
    assert found[f"acs:ram::{account}:user/{user}"]["CallCount"] == 1
    last = datetime.strptime(found[f"acs:ram::{account}:root"]["LastCallTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= last.replace(tzinfo=UTC) <= datetime.now(UTC) + timedelta(seconds=1)

    kms.call("StartKeyAssociationDetection", KeyId=unused)
    assert wait_for(kms, unused)["Associations"] == {"Association": []}

    # The administrator's CLI reads the same store.
    args = [
        sys.executable,
        "-m",
        "openkms.cli",
        "key",
        "associations",
        key_id,
        "--json",
        "--data-dir",
        str(server.data_dir),
    ]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    shown = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)
    assert listed["Status"] == "Succeeded"
    assert {a["Principal"]: a["CallCount"] for a in listed["Associations"]} == {
        f"acs:ram::{account}:root": 3,
        f"acs:ram::{account}:user/{user}": 1,
    }


def test_detection_needs_permission(server: LiveServer, root: Callable[[str], Caller]) -> None:
    kms, ram = root("kms"), root("ram")
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    _, access_key_id, secret = new_user(ram, "AliyunKMSCryptoUserAccess")
    refused = pytest.raises(DeniedError)
    with refused as caught:
        as_user(server, "kms", access_key_id, secret).call("StartKeyAssociationDetection", KeyId=key_id)
    assert caught.value.code == "Forbidden.NoPermission"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "postgres":
        request.getfixturevalue("postgres_url")
        from tests.conftest import new_postgres_database

        url = new_postgres_database()
    else:
        url = f"sqlite:///{tmp_path / 'usage.db'}"
    db = Database(url)
    upgrade_to_head(db.engine)
    return db


def test_workers_add_up_and_the_last_call_only_moves_forward(database: Database) -> None:
    alice = Principal(AccountId("1111111111111111"), "user/alice")
    ecs = Principal(AccountId("1111111111111111"), "ecs", actor="service")
    first, second = UsageRecorder(database), UsageRecorder(database)  # two workers
    t0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
    first.record("key-1", alice, t0 + 10)
    first.record("key-1", alice, t0)
    first.record("key-1", ecs, t0 + 5)
    second.record("key-1", alice, t0 + 3)
    assert first.flush() == 2 and second.flush() == 1
    assert first.flush() == 0  # nothing new
    with database.unit_of_work() as uow:
        rows = {
            (r.principal, r.service): r for r in uow.usage.of_key("key-1", datetime(2026, 1, 1, tzinfo=UTC))
        }
    assert rows[(alice.arn, "")].call_count == 3
    assert rows[(alice.arn, "")].last_used_at.timestamp() == t0 + 10  # the later time wins
    assert rows[(ecs.arn, "ecs")].call_count == 1
    database.dispose()


def test_a_failed_flush_keeps_the_counts(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'missing.db'}")  # no schema: every write fails
    recorder = UsageRecorder(db)
    recorder.record("key-1", Principal(AccountId("1111111111111111"), "root"), 1.0)
    with pytest.raises(Exception):
        recorder.flush()
    upgrade_to_head(db.engine)
    assert recorder.flush() == 1
    db.dispose()
