"""Deletion protection, scheduled deletion, key versions and rotation policy through the official SDKs,
in every signing mode, on SQLite and PostgreSQL. Each refusal changes nothing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.sdk import KmsCaller, KmsError, list_all

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _meta(kms: KmsCaller, key_id: str) -> dict[str, object]:
    return dict(kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"])


def _refused(kms: KmsCaller, action: str, code: str, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert caught.value.code == code, (action, params, caught.value.message)
    return caught.value


def _date(text: object) -> datetime:
    return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_deletion_protection_blocks_scheduling(kms: KmsCaller, key_id: str) -> None:
    arn = _meta(kms, key_id)["Arn"]
    assert _meta(kms, key_id)["DeletionProtection"] == "Disabled"
    kms.call(
        "SetDeletionProtection",
        ProtectedResourceArn=arn,
        EnableDeletionProtection=True,
        DeletionProtectionDescription="used by orders",
    )
    meta = _meta(kms, key_id)
    assert (meta["DeletionProtection"], meta["DeletionProtectionDescription"]) == (
        "Enabled",
        "used by orders",
    )
    error = _refused(
        kms, "ScheduleKeyDeletion", "Rejected.DeletionProtection", KeyId=key_id, PendingWindowInDays=7
    )
    assert error.status == 400
    assert _meta(kms, key_id) == meta  # nothing changed
    kms.call("SetDeletionProtection", ProtectedResourceArn=arn, EnableDeletionProtection=False)
    assert _meta(kms, key_id)["DeletionProtection"] == "Disabled"
    kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    assert _meta(kms, key_id)["KeyState"] == "PendingDeletion"
    # protection cannot be turned on for a key pending deletion
    _refused(
        kms,
        "SetDeletionProtection",
        "Forbidden.KeyStateError",
        ProtectedResourceArn=arn,
        EnableDeletionProtection=True,
    )
    assert _meta(kms, key_id)["DeletionProtection"] == "Disabled"
    _refused(
        kms,
        "SetDeletionProtection",
        "Forbidden.KeyNotFound",
        ProtectedResourceArn=str(arn).replace(key_id, "key-hzzdoesnotexist000000000"),
        EnableDeletionProtection=True,
    )


def test_schedule_and_cancel_deletion(kms: KmsCaller, key_id: str) -> None:
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="keep me")["CiphertextBlob"]
    before = _meta(kms, key_id)
    for days in (6, 367, 0):
        _refused(kms, "ScheduleKeyDeletion", "InvalidParameter", KeyId=key_id, PendingWindowInDays=days)
    _refused(kms, "ScheduleKeyDeletion", "MissingPendingWindowInDays", KeyId=key_id)
    assert _meta(kms, key_id) == before
    kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    delete_date = _date(meta["DeleteDate"])
    expected = datetime.now(UTC) + timedelta(days=7)
    assert abs((delete_date - expected).total_seconds()) < 120
    # every cryptographic operation is refused; describe and list still work
    for action, params in (
        ("Encrypt", {"KeyId": key_id, "Plaintext": "x"}),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("GenerateDataKey", {"KeyId": key_id}),
        ("GenerateDataKeyWithoutPlaintext", {"KeyId": key_id}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": key_id}),
        ("CreateKeyVersion", {"KeyId": key_id}),
    ):
        error = _refused(kms, action, "Forbidden.KeyStateError", **params)
        assert error.status == 400
    _refused(kms, "EnableKey", "Forbidden.KeyStateError", KeyId=key_id)
    _refused(kms, "ScheduleKeyDeletion", "Forbidden.KeyStateError", KeyId=key_id, PendingWindowInDays=30)
    assert _meta(kms, key_id)["DeleteDate"] == meta["DeleteDate"]
    pending = list_all(
        kms,
        "ListKeys",
        "Keys",
        "Key",
        Filters=json.dumps([{"Key": "KeyState", "Values": ["PendingDeletion"]}]),
    )
    assert key_id in {key["KeyId"] for key in pending}
    kms.call("CancelKeyDeletion", KeyId=key_id)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Enabled" and "DeleteDate" not in meta
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "keep me"
    _refused(kms, "CancelKeyDeletion", "Forbidden.KeyStateError", KeyId=key_id)


def test_a_disabled_key_can_be_scheduled_and_comes_back_enabled(kms: KmsCaller, key_id: str) -> None:
    kms.call("DisableKey", KeyId=key_id)
    kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=366)
    assert _meta(kms, key_id)["KeyState"] == "PendingDeletion"
    kms.call("CancelKeyDeletion", KeyId=key_id)
    assert _meta(kms, key_id)["KeyState"] == "Enabled"


def test_key_versions(kms: KmsCaller, key_id: str, instance_id: str) -> None:
    first = str(_meta(kms, key_id)["PrimaryKeyVersion"])
    old = kms.call("Encrypt", KeyId=key_id, Plaintext="v1")
    created = kms.call("CreateKeyVersion", KeyId=key_id)["KeyVersion"]
    assert created["KeyId"] == key_id and UUID.match(created["KeyVersionId"])
    assert _date(created["CreationDate"])
    meta = _meta(kms, key_id)
    assert meta["PrimaryKeyVersion"] == created["KeyVersionId"] != first
    assert meta["LastRotationDate"] == created["CreationDate"]
    new = kms.call("Encrypt", KeyId=key_id, Plaintext="v2")
    assert (old["KeyVersionId"], new["KeyVersionId"]) == (first, created["KeyVersionId"])
    opened = kms.call("Decrypt", CiphertextBlob=old["CiphertextBlob"])
    assert (opened["Plaintext"], opened["KeyVersionId"]) == ("v1", first)
    assert kms.call("Decrypt", CiphertextBlob=new["CiphertextBlob"])["Plaintext"] == "v2"
    described = kms.call("DescribeKeyVersion", KeyId=key_id, KeyVersionId=first)["KeyVersion"]
    assert described["KeyVersionId"] == first and described["KeyId"] == key_id
    kms.call("CreateKeyVersion", KeyId=key_id)
    listed = kms.call("ListKeyVersions", KeyId=key_id, PageSize=2)
    assert listed["TotalCount"] == 3 and listed["PageNumber"] == 1 and listed["PageSize"] == 2
    page1 = [v["KeyVersionId"] for v in listed["KeyVersions"]["KeyVersion"]]
    page2 = [
        v["KeyVersionId"]
        for v in kms.call("ListKeyVersions", KeyId=key_id, PageNumber=2, PageSize=2)["KeyVersions"][
            "KeyVersion"
        ]
    ]
    assert page1[:2] == [first, created["KeyVersionId"]] and len(page2) == 1
    assert page2[0] == _meta(kms, key_id)["PrimaryKeyVersion"]
    other = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]
    error = _refused(
        kms, "DescribeKeyVersion", "Forbidden.KeyVersionNotFound", KeyId=other["KeyId"], KeyVersionId=first
    )
    assert error.status == 404
    _refused(
        kms,
        "DescribeKeyVersion",
        "Forbidden.KeyVersionNotFound",
        KeyId=key_id,
        KeyVersionId="00000000-0000-4000-8000-000000000000",
    )
    kms.call("DisableKey", KeyId=key_id)
    _refused(kms, "CreateKeyVersion", "Rejected.Disabled", KeyId=key_id)
    assert kms.call("ListKeyVersions", KeyId=key_id)["TotalCount"] == 3


def test_rotation_policy(kms: KmsCaller, instance_id: str) -> None:
    created = kms.call(
        "CreateKey", DKMSInstanceId=instance_id, EnableAutomaticRotation=True, RotationInterval="7d"
    )["KeyMetadata"]
    assert created["AutomaticRotation"] == "Enabled"
    assert created["RotationInterval"] == "604800s"
    assert _date(created["NextRotationDate"]) - _date(created["LastRotationDate"]) == timedelta(days=7)
    key_id = created["KeyId"]
    kms.call("UpdateRotationPolicy", KeyId=key_id, EnableAutomaticRotation=True, RotationInterval="31536000s")
    meta = _meta(kms, key_id)
    assert meta["RotationInterval"] == "31536000s"
    assert _date(meta["NextRotationDate"]) - _date(meta["LastRotationDate"]) == timedelta(days=365)
    for interval in ("6d", "366d", "31536001s", "7w", "seven"):
        _refused(
            kms,
            "UpdateRotationPolicy",
            "InvalidParameter",
            KeyId=key_id,
            EnableAutomaticRotation=True,
            RotationInterval=interval,
        )
        _refused(
            kms,
            "CreateKey",
            "InvalidParameter",
            DKMSInstanceId=instance_id,
            EnableAutomaticRotation=True,
            RotationInterval=interval,
        )
    _refused(
        kms, "UpdateRotationPolicy", "MissingRotationInterval", KeyId=key_id, EnableAutomaticRotation=True
    )
    assert _meta(kms, key_id) == meta
    kms.call("UpdateRotationPolicy", KeyId=key_id, EnableAutomaticRotation=False)
    meta = _meta(kms, key_id)
    assert meta["AutomaticRotation"] == "Disabled"
    assert "RotationInterval" not in meta and "NextRotationDate" not in meta
