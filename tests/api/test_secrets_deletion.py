"""A secret's recovery window ends and the job deletes it (the dev clock moves time); and no secret
value reaches the database, its WAL, the audit log or the server log in any form."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_dev_clock import _advance, _eventually
from tests.conftest import new_postgres_database
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture(params=["sqlite", "postgres"])
def dev_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = new_postgres_database() if request.param == "postgres" else None
    live = LiveServer(
        tmp_path / "data",
        database_url=url,
        extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "0.2"},
        extra_args=["--dev-clock"],
    ).start()
    yield live
    live.stop()


def _records(server: LiveServer) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted((server.data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def test_the_job_deletes_a_secret_when_its_window_ends(dev_server: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    kms.call("CreateSecret", SecretName="doomed", VersionId="v1", SecretData="bye")
    kms.call("CreateSecret", SecretName="kept", VersionId="v1", SecretData="stay")
    kms.call("CreateSecret", SecretName="late", VersionId="v1", SecretData="later")
    kms.call("TagResource", SecretName="doomed", Tags=json.dumps([{"TagKey": "a", "TagValue": "b"}]))
    kms.call("DeleteSecret", SecretName="doomed", RecoveryWindowInDays="7")
    kms.call("DeleteSecret", SecretName="late", RecoveryWindowInDays="30")
    assert _advance(dev_server, "8d").status_code == 200

    def gone() -> bool:
        try:
            kms.call("DescribeSecret", SecretName="doomed")
        except KmsError as exc:
            assert exc.code == "Forbidden.ResourceNotFound"
            return True
        return False

    _eventually(gone)
    assert kms.call("GetSecretValue", SecretName="kept")["SecretData"] == "stay"
    assert "PlannedDeleteTime" in kms.call("DescribeSecret", SecretName="late")  # its window goes on
    deletions = [r for r in _records(dev_server) if r["action"] == "DeleteSecret" and r["door"] == "job"]
    assert len(deletions) == 1 and str(deletions[0]["resource"]).endswith(":secret/doomed")
    assert str(deletions[0]["principal"]).endswith(":system/secret-deletion-job")
    # The name is free again, and nothing of the old secret came back with it.
    kms.call("CreateSecret", SecretName="doomed", VersionId="v9", SecretData="new")
    versions = kms.call("ListSecretVersionIds", SecretName="doomed", IncludeDeprecated="true")
    assert [v["VersionId"] for v in versions["VersionIds"]["VersionId"]] == ["v9"]


def test_no_secret_value_at_rest_or_in_the_logs(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data").start()
    try:
        kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
        key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
        values = [secrets.token_hex(16) for _ in range(3)]
        binary = secrets.token_bytes(24)
        kms.call(
            "CreateSecret", SecretName="db", VersionId="v1", SecretData=values[0], EncryptionKeyId=key_id
        )
        kms.call("PutSecretValue", SecretName="db", VersionId="v2", SecretData=values[1])
        kms.call("CreateSecret", SecretName="plain", VersionId="v1", SecretData=values[2])
        kms.call(
            "CreateSecret", SecretName="bin", VersionId="v1", SecretDataType="binary",
            SecretData=base64.b64encode(binary).decode(), EncryptionKeyId=key_id,
        )  # fmt: skip
        for name in ("db", "plain", "bin"):
            kms.call("GetSecretValue", SecretName=name)
        kms.call("BatchGetSecretValue", SecretsList=[{"SecretName": "db"}, {"SecretName": "plain"}])
        # The value reads are uses of the key, in the audit record of each read.
        reads = [r for r in _records(server) if r["action"] == "GetSecretValue" and r["result"] == "Success"]
        assert {r["key_id"] for r in reads if str(r["resource"]).endswith(":secret/db")} == {key_id}
    finally:
        server.stop()
    canaries = [v.encode() for v in values] + [binary, base64.b64encode(binary)]
    database = server.data_dir / "openkms.db"
    places = [database, database.with_name("openkms.db-wal"), *sorted((server.data_dir / "audit").iterdir())]
    assert server.log_path is not None
    places.append(server.log_path)
    for path in places:
        if path.is_file():
            data = path.read_bytes()
            assert not any(canary in data for canary in canaries), path.name
