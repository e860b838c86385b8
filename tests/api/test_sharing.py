"""Instance sharing (F4.1) and the access-management quota (F4.3), through the admin CLI and the
official KMS SDK against a live server; the release delay at the service level with explicit times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openkms.clock import SystemClock
from openkms.errors import QuotaExceeded
from openkms.policy.key_policy import custom_key_policy, default_key_policy
from openkms.repository.database import Database
from openkms.repository.migrate import upgrade_to_head
from openkms.service.bootstrap import bootstrap_store
from openkms.service.sharing import InstanceAccess
from openkms.types import InstanceKind, RegionId
from tests.api.test_identities import create_account
from tests.support.products import Caller, DeniedError
from tests.support.server import LiveServer


def admin(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(server.data_dir)]
    if server.database_url:
        command += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def kms_of(server: LiveServer, account: dict[str, str]) -> Caller:
    return Caller("kms", server.endpoint, account["AccessKeyId"], account["AccessKeySecret"])


def instance_of(kms: Caller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


def refused(call: object) -> DeniedError:
    with pytest.raises(DeniedError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_shared_instance_makes_keys_usable_by_both_accounts(server: LiveServer) -> None:
    owner, guest = create_account(server), create_account(server)
    owner_kms, guest_kms = kms_of(server, owner), kms_of(server, guest)
    instance = instance_of(owner_kms)

    # Not shared yet: to the guest the instance does not exist (no existence oracle), as a missing one.
    not_yet = refused(lambda: guest_kms.call("CreateKey", DKMSInstanceId=instance))
    missing = refused(lambda: guest_kms.call("CreateKey", DKMSInstanceId="kst-hzz0000000000000000000"))
    assert (
        (not_yet.code, not_yet.status)
        == (missing.code, missing.status)
        == ("Forbidden.InstanceNotFound", 404)
    )
    assert not_yet.message.replace(instance, "X") == missing.message.replace(
        "kst-hzz0000000000000000000", "X"
    )
    assert owner["AccountId"] not in not_yet.message

    shared = admin(server, "instance", "share", instance, "--account", guest["AccountId"])
    assert shared.returncode == 0, shared.stderr
    made = guest_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]
    assert made["DKMSInstanceId"] == instance and made["Arn"].split(":")[3] == guest["AccountId"]
    policy = json.loads(guest_kms.call("GetKeyPolicy", KeyId=made["KeyId"], PolicyName="default")["Policy"])
    assert [(s["Principal"]["RAM"], s["Action"] == ["kms:*"]) for s in policy["Statement"]] == [
        ([f"acs:ram::{guest['AccountId']}:*"], True),
        ([f"acs:ram::{owner['AccountId']}:*"], False),
    ]
    blob = owner_kms.call("Encrypt", KeyId=made["Arn"], Plaintext="owner")["CiphertextBlob"]
    assert guest_kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "owner"
    # The owner uses the guest's key but does not manage it.
    manage = refused(lambda: owner_kms.call("ScheduleKeyDeletion", KeyId=made["Arn"], PendingWindowInDays=7))
    assert manage.code == "Forbidden.NoPermission"

    # Keys the owner makes stay the owner's: to the guest they do not exist (no existence oracle).
    own = owner_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]
    assert (
        refused(lambda: guest_kms.call("Encrypt", KeyId=own["Arn"], Plaintext="x")).code
        == "Forbidden.KeyNotFound"
    )

    assert admin(server, "instance", "unshare", instance, "--account", guest["AccountId"]).returncode == 0
    assert (
        refused(lambda: guest_kms.call("CreateKey", DKMSInstanceId=instance)).code
        == "Forbidden.InstanceNotFound"
    )


def test_the_access_quota_refuses_an_extra_account(server: LiveServer) -> None:
    owner = create_account(server)
    first, second = create_account(server), create_account(server)
    owner_kms = kms_of(server, owner)
    instance = instance_of(owner_kms)
    set_quota = admin(server, "instance", "quota", instance, "1")
    assert set_quota.returncode == 0 and "quota 1" in set_quota.stdout, set_quota.stderr
    key_a = owner_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    key_b = owner_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]

    def grant(*accounts: str) -> str:
        return custom_key_policy(
            owner["AccountId"], other_account_users=[f"acs:ram::{a}:user/app" for a in accounts]
        )

    owner_kms.call("SetKeyPolicy", KeyId=key_a, PolicyName="default", Policy=grant(first["AccountId"]))
    # The same account on another key costs nothing more.
    owner_kms.call("SetKeyPolicy", KeyId=key_b, PolicyName="default", Policy=grant(first["AccountId"]))
    both = grant(first["AccountId"], second["AccountId"])
    extra = refused(lambda: owner_kms.call("SetKeyPolicy", KeyId=key_b, PolicyName="default", Policy=both))
    assert (extra.code, extra.status) == ("Rejected.LimitExceeded", 400)
    stored = owner_kms.call("GetKeyPolicy", KeyId=key_b, PolicyName="default")["Policy"]
    assert stored == grant(first["AccountId"])  # nothing changed
    at_creation = refused(
        lambda: owner_kms.call("CreateKey", DKMSInstanceId=instance, Policy=grant(second["AccountId"]))
    )
    assert at_creation.code == "Rejected.LimitExceeded"

    # Removing the grant everywhere frees the unit only after the release delay (300 s by default).
    plain = default_key_policy(owner["AccountId"])
    owner_kms.call("SetKeyPolicy", KeyId=key_a, PolicyName="default", Policy=plain)
    owner_kms.call("SetKeyPolicy", KeyId=key_b, PolicyName="default", Policy=plain)
    cooling = refused(lambda: owner_kms.call("SetKeyPolicy", KeyId=key_a, PolicyName="default",
                                             Policy=grant(second["AccountId"])))  # fmt: skip
    assert cooling.code == "Rejected.LimitExceeded" and "released less than 300 s ago" in cooling.message
    shown = admin(server, "instance", "quota", instance)
    assert first["AccountId"] in shown.stdout.split("returning soon:")[1]


class StepClock(SystemClock):
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def timestamp(self) -> float:
        return self.moment.timestamp()


def test_a_released_unit_comes_back_after_the_delay(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade_to_head(db.engine)
    owner = bootstrap_store(db, ("cn-hangzhou",), SystemClock())
    with db.unit_of_work() as uow:
        instance = uow.instances.in_region(owner, RegionId("cn-hangzhou"))[0]
    assert instance.kind is InstanceKind.SOFTWARE
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    access = InstanceAccess(db, StepClock(start), default_quota=1, release_seconds=300)

    def set_policy(key_id: str, *accounts: str, at: datetime) -> None:
        policy = custom_key_policy(owner, other_account_users=[f"acs:ram::{a}:user/x" for a in accounts])
        with db.unit_of_work(write=True) as uow:
            access.enforce(uow, instance.instance_id, key_id, owner, policy if accounts else None, at)

    set_policy("k1", "2000000000000001", at=start)
    with pytest.raises(QuotaExceeded):
        set_policy("k2", "2000000000000002", at=start)
    set_policy("k1", at=start + timedelta(seconds=10))  # released
    with pytest.raises(QuotaExceeded):
        set_policy("k2", "2000000000000002", at=start + timedelta(seconds=309))
    set_policy("k2", "2000000000000002", at=start + timedelta(seconds=310))
    with db.unit_of_work() as uow:
        held = {g.grantee_account_id: g.released_at for g in uow.sharing.grants(instance.instance_id)}
    assert held == {"2000000000000002": None}
