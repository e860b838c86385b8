"""Service keys: `openkms service-key create` against a live server's store, then the SDK sees a key
that users may use but not disable, schedule for deletion or re-alias (clear UnsupportedOperation)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.support.sdk import KmsCaller, KmsError, list_all
from tests.support.server import LiveServer


def _cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(server.data_dir)]
    if server.database_url and args[0] == "service-key":
        command += ["--database-url", server.database_url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def service(server: LiveServer) -> str:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    made = _cli(server, "service-key", "create", name)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"created alias/acs/{name} -> ")
    again = _cli(server, "service-key", "create", name)
    assert (
        again.returncode == 0
        and again.stdout.startswith("exists")
        and again.stdout.split()[-1] == made.stdout.split()[-1]
    )
    return name


def test_service_key_is_usable_but_protected_from_users(kms: KmsCaller, service: str, key_id: str) -> None:
    alias = f"alias/acs/{service}"
    meta = kms.call("DescribeKey", KeyId=alias)["KeyMetadata"]
    assert meta["Creator"] == service and meta["KeyState"] == "Enabled"
    service_key = meta["KeyId"]
    services_listed = list_all(
        kms, "ListKeys", "Keys", "Key", Filters=json.dumps([{"Key": "CreatorType", "Values": ["Service"]}])
    )
    assert service_key in {key["KeyId"] for key in services_listed}
    sealed = kms.call("Encrypt", KeyId=alias, Plaintext="by a service key")
    assert kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == "by a service key"
    refused = [
        ("DisableKey", {"KeyId": service_key}),
        ("ScheduleKeyDeletion", {"KeyId": alias, "PendingWindowInDays": 7}),
        ("CreateAlias", {"AliasName": f"alias/mine-{uuid.uuid4().hex[:6]}", "KeyId": service_key}),
        ("UpdateAlias", {"AliasName": alias, "KeyId": key_id}),
        ("DeleteAlias", {"AliasName": alias}),
        ("SetDeletionProtection", {"ProtectedResourceArn": meta["Arn"], "EnableDeletionProtection": False}),
    ]
    for action, params in refused:
        with pytest.raises(KmsError) as caught:
            kms.call(action, **params)
        assert (caught.value.code, caught.value.status) == ("UnsupportedOperation", 400), action
        assert "service key" in caught.value.message or "alias/acs/" in caught.value.message
    after = kms.call("DescribeKey", KeyId=alias)["KeyMetadata"]
    assert after == meta
    assert kms.call("ListAliasesByKeyId", KeyId=service_key)["Aliases"]["Alias"][0]["AliasName"] == alias


def test_service_key_cli_rejects_bad_names(server: LiveServer) -> None:
    result = _cli(server, "service-key", "create", "Not_Valid")
    assert result.returncode == 1
    assert "service key not created" in result.stderr
