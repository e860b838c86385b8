"""Time travel for users' own tests: a server started with --dev-clock moves its clock forward on
request (DevAdvanceClock or `openkms dev advance`) and its job runner rotates and deletes what is due.
Off by default and refused then; visible in /healthz and in every audit record while on."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.api.test_identities import create_account, new_user
from tests.conftest import new_postgres_database
from tests.support.products import Caller
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

DAY = 86400


@pytest.fixture(params=["sqlite", "postgres"])
def dev_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = new_postgres_database() if request.param == "postgres" else None
    # The flag on one backend, the setting's environment variable on the other: both turn it on.
    flag = request.param == "sqlite"
    live = LiveServer(
        tmp_path / "data",
        database_url=url,
        extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "0.2", **({} if flag else {"OPENKMS_DEV_CLOCK": "true"})},
        extra_args=["--dev-clock"] if flag else [],
    ).start()
    yield live
    live.stop()


def _advance(server: LiveServer, duration: str) -> httpx.Response:
    params = signed_params("DevAdvanceClock", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Duration=duration)
    return send(server.url, params)


def _wrapped_material(server: LiveServer, key_id: str) -> list[bytes]:
    """The stored (wrapped) material of a key's versions, read straight from the store: the canaries."""
    if server.database_url is not None:
        return []
    with closing(sqlite3.connect(server.data_dir / "openkms.db")) as connection:
        rows = connection.execute("SELECT wrapped_material FROM key_versions WHERE key_id = ?", (key_id,))
        found = [bytes(row[0]) for row in rows]
    assert found
    return found


def _eventually(check: object, timeout: float = 30.0) -> None:
    """The job runner works on its own interval: wait for its result (bounded)."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the job runner did not act in time"
        time.sleep(0.1)


def test_dev_clock_drives_rotation_and_deletion(dev_server: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    rotating = kms.call(
        "CreateKey", DKMSInstanceId=instance, EnableAutomaticRotation=True, RotationInterval="7d"
    )
    rotating_id = rotating["KeyMetadata"]["KeyId"]
    doomed = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    kms.call("CreateAlias", AliasName="alias/doomed", KeyId=doomed)
    blob = kms.call("Encrypt", KeyId=doomed, Plaintext="secret")["CiphertextBlob"]
    old_blob = kms.call("Encrypt", KeyId=rotating_id, Plaintext="v1")["CiphertextBlob"]
    kms.call("ScheduleKeyDeletion", KeyId=doomed, PendingWindowInDays=7)
    canaries = _wrapped_material(dev_server, doomed)

    health = httpx.get(dev_server.url + "/healthz", timeout=10).json()
    assert health["dev_clock"]["offset_seconds"] == 0

    answer = _advance(dev_server, "8d")
    assert answer.status_code == 200, answer.text
    assert answer.json()["OffsetSeconds"] == 8 * DAY
    assert httpx.get(dev_server.url + "/healthz", timeout=10).json()["dev_clock"]["offset_seconds"] == 8 * DAY

    def gone() -> bool:
        try:
            kms.call("DescribeKey", KeyId=doomed)
        except KmsError as exc:
            assert exc.code == "Forbidden.KeyNotFound"
            return True
        return False

    _eventually(gone)
    _eventually(lambda: kms.call("ListKeyVersions", KeyId=rotating_id)["TotalCount"] == 2)
    with pytest.raises(KmsError) as caught:
        kms.call("Decrypt", CiphertextBlob=blob)
    assert caught.value.code == "Rejected.InvalidCiphertext"
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeKey", KeyId="alias/doomed")
    assert caught.value.code == "Forbidden.AliasNotFound"
    assert kms.call("Decrypt", CiphertextBlob=old_blob)["Plaintext"] == "v1"
    if dev_server.database_url is None:  # P10 on the live server: not in the database file nor its WAL
        database = dev_server.data_dir / "openkms.db"
        for path in (database, database.with_name("openkms.db-wal")):
            if path.exists():
                data = path.read_bytes()
                assert not any(canary in data for canary in canaries), path.name

    # the CLI moves the same clock
    cli = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "dev", "advance", "1d", "--data-dir", str(dev_server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert httpx.get(dev_server.url + "/healthz", timeout=10).json()["dev_clock"]["offset_seconds"] == 9 * DAY
    bad = _advance(dev_server, "-3d")
    assert (bad.status_code, bad.json()["Code"]) == (400, "InvalidParameter")

    records = [
        json.loads(line)
        for path in sorted((dev_server.data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    events = [r for r in records if "request_id" in r]  # not the files' own opening records
    assert len(events) > 10 and all(r["dev_clock"] is True for r in events)
    jobs = {(r["action"], r["key_id"], r["principal"].rsplit("/", 1)[-1]) for r in events}
    assert ("DeleteKey", doomed, "deletion-job") in jobs
    assert ("CreateKeyVersion", rotating_id, "rotation-job") in jobs


def test_dev_clock_is_off_by_default(server: LiveServer) -> None:
    answer = _advance(server, "30d")
    assert (answer.status_code, answer.json()["Code"]) == (400, "UnsupportedOperation")
    assert "dev_clock" not in httpx.get(server.url + "/healthz", timeout=10).json()
    cli = subprocess.run(
        [sys.executable, "-m", "openkms.cli", "dev", "advance", "30d", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 1 and "not started with --dev-clock" in cli.stderr


def test_one_job_runner_among_several_workers(tmp_path: Path) -> None:
    live = LiveServer(
        tmp_path / "data",
        workers=2,
        extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "0.2"},
        extra_args=["--dev-clock"],
    ).start()
    try:
        kms = KmsCaller("tea-acs3", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        keys = [
            kms.call(
                "CreateKey", DKMSInstanceId=instance, EnableAutomaticRotation=True, RotationInterval="7d"
            )["KeyMetadata"]["KeyId"]
            for _ in range(3)
        ]
        for expected in (2, 3):
            assert _advance(live, "8d").status_code == 200

            def rotated(expected: int = expected) -> bool:
                return all(kms.call("ListKeyVersions", KeyId=k)["TotalCount"] >= expected for k in keys)

            _eventually(rotated)
        # every job record was written by one process (each worker has its own audit file)
        writers = {
            path.name
            for path in (live.data_dir / "audit").glob("*.jsonl")
            for line in path.read_text().splitlines()
            if '"rotation-job"' in line or "system/rotation-job" in line
        }
        assert len(writers) == 1
        assert all(kms.call("ListKeyVersions", KeyId=k)["TotalCount"] == 3 for k in keys)
    finally:
        live.stop()


def test_only_the_operator_accounts_root_moves_the_dev_clock(dev_server: LiveServer) -> None:
    other = create_account(dev_server)
    stranger = send(
        dev_server.url,
        signed_params("DevAdvanceClock", other["AccessKeyId"], other["AccessKeySecret"], Duration="30d"),
    )
    assert (stranger.status_code, stranger.json()["Code"]) == (403, "Forbidden.NoPermission"), stranger.text
    assert "another account" in stranger.json()["Message"]
    # A RAM user of the operator's account with every kms action is not the operator's root either.
    ram = Caller("ram", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    _, user_key, user_secret = new_user(ram, "AliyunKMSFullAccess")
    user = send(dev_server.url, signed_params("DevAdvanceClock", user_key, user_secret, Duration="30d"))
    assert (user.status_code, user.json()["Code"]) == (403, "Forbidden.NoPermission"), user.text
    assert httpx.get(dev_server.url + "/healthz", timeout=10).json()["dev_clock"]["offset_seconds"] == 0
    assert _advance(dev_server, "1d").status_code == 200
    assert httpx.get(dev_server.url + "/healthz", timeout=10).json()["dev_clock"]["offset_seconds"] == DAY
