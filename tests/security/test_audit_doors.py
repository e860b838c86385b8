"""One audit vocabulary whatever the front door: the RPC API, the jobs and the admin CLI all write
records with the same fields through the one runner, each naming the resource it acted on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openkms.audit import AuditEvent
from tests.api.test_identities import as_user, create_account, denied, kms_key, new_user, root

__all__ = ["kms_key", "root"]  # fixtures shared with the identities suite
from tests.api.test_sharing import admin, instance_of, kms_of
from tests.support.products import Caller
from tests.support.server import LiveServer

FIELDS = set(AuditEvent._fields) | {"seq", "prev", "hash"}


def _records(data_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((data_dir / "audit").glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if '"AuditLogOpened"' not in line and '"AuditChainKeyed"' not in line
    ]


def test_admin_cli_changes_are_audited_like_api_calls(server: LiveServer) -> None:
    owner, guest = create_account(server), create_account(server)
    instance = instance_of(kms_of(server, owner))
    for args in (
        ("instance", "share", instance, "--account", guest["AccountId"]),
        ("instance", "quota", instance, "3"),
        ("instance", "unshare", instance, "--account", guest["AccountId"]),
        ("instance", "share", "kst-hzz-doesnotexist", "--account", guest["AccountId"]),
    ):
        admin(server, *args)
    made = admin(server, "service-key", "create", "doors-test")
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.split("-> ")[1].strip()

    # Each admin command writes its own log file: order the records by time, not by file name.
    cli = sorted((r for r in _records(server.data_dir) if r["door"] == "cli"), key=lambda r: r["time"])
    assert all(set(r) == FIELDS for r in cli)
    instance_arn = f"acs:kms:cn-hangzhou:{owner['AccountId']}:keystore/{instance}"
    summary = [
        (r["action"], r["result"], r["resource"], r["http_status"])
        for r in cli
        if r["resource"] == instance_arn
    ]
    assert summary == [
        ("ShareInstance", "Success", instance_arn, None),
        ("SetInstanceQuota", "Success", instance_arn, None),
        ("DescribeInstanceQuota", "Success", instance_arn, None),
        ("UnshareInstance", "Success", instance_arn, None),
    ]
    refused = [r for r in cli if r["resource"] is None and r["action"] == "ShareInstance"]
    assert refused == [] or all(r["result"] != "Success" for r in refused)
    share = next(r for r in cli if r["action"] == "ShareInstance" and r["resource"] == instance_arn)
    assert share["principal"].startswith(f"acs:kms::{owner['AccountId']}:system/operator/")
    created = [r for r in cli if r["action"] == "CreateKey" and r["key_id"] == key_id]
    assert len(created) == 1
    assert created[0]["principal"].endswith(":service/doors-test") and created[0]["key_version_id"]
    assert created[0]["resource"].endswith(f":key/{key_id}")


def test_a_denied_ram_call_names_the_user_it_was_about(
    server: LiveServer, root: Callable[[str], Caller]
) -> None:
    _, access_key_id, secret = new_user(root("ram"))
    refusal = denied(lambda: as_user(server, "ram", access_key_id, secret).call("CreateUser", UserName="eve"))
    record = next(r for r in _records(server.data_dir) if r["request_id"] == refusal.request_id)
    assert set(record) == FIELDS
    assert (record["door"], record["action"], record["result"], record["http_status"]) == (
        "rpc",
        "ram:CreateUser",
        "Forbidden.NoPermission",
        403,
    )
    assert record["resource"] == f"acs:ram::{record['account_id']}:user/eve"


def test_a_denied_kms_call_names_its_key(
    server: LiveServer, root: Callable[[str], Caller], kms_key: str
) -> None:
    _, access_key_id, secret = new_user(root("ram"))
    refusal = denied(lambda: as_user(server, "kms", access_key_id, secret).call("DescribeKey", KeyId=kms_key))
    record = next(r for r in _records(server.data_dir) if r["request_id"] == refusal.request_id)
    assert (record["key_id"], record["resource"].rsplit("/", 1)[1]) == (kms_key, kms_key)


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("Encrypt", {"Plaintext": "secret"}),  # the key-operation pipeline
        ("DisableKey", {}),  # the locked write
        ("ScheduleKeyDeletion", {"PendingWindowInDays": "7"}),
        ("GetKeyPolicy", {}),
    ],
)
def test_a_denied_key_operation_names_its_key(
    server: LiveServer,
    root: Callable[[str], Caller],
    kms_key: str,
    action: str,
    params: dict[str, str],
) -> None:
    _, access_key_id, secret = new_user(root("ram"))
    caller = as_user(server, "kms", access_key_id, secret)
    refusal = denied(lambda: caller.call(action, KeyId=kms_key, **params))
    record = next(r for r in _records(server.data_dir) if r["request_id"] == refusal.request_id)
    assert (record["action"], record["key_id"], record["resource"].rsplit("/", 1)[1]) == (
        action,
        kms_key,
        kms_key,
    )
    assert "secret" not in json.dumps(record)
