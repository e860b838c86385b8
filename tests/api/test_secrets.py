"""Secrets through the official SDK against a live server (SQLite and PostgreSQL): every action, its
errors, versions and stages, binary values, the default service key, a disabled key, tags and the
instance quota. Policies and the deletion job: test_secrets_policies.py, test_secrets_deletion.py."""

from __future__ import annotations

import base64
import json
import string
import uuid

import pytest

from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


def unique(prefix: str = "secret") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(server: LiveServer) -> KmsCaller:
    """The official OpenAPI SDK (default signing): the suites of signing modes are test_wire's."""
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def secret_key(sdk: KmsCaller, instance_id: str) -> str:
    return str(sdk.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])


def refused(call: object, code: str, status: int) -> KmsError:
    assert callable(call)
    with pytest.raises(KmsError) as caught:
        call()
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    return caught.value


def _create(sdk: KmsCaller, key_id: str | None, name: str, value: str = "s3cr3t", **extra: object) -> dict:
    return sdk.call(
        "CreateSecret", SecretName=name, VersionId="v1", SecretData=value, EncryptionKeyId=key_id, **extra
    )


@pytest.mark.parametrize("mode", ["tea-acs3", "tea-rpc", "tea-acs4", "legacy"])
def test_create_get_put_in_every_signing_mode(server: LiveServer, instance_id: str, mode: str) -> None:
    kms = KmsCaller(mode, server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    name = unique()
    created = _create(kms, key_id, name, "pa ss+word/=é", Description="db password")
    assert created["SecretName"] == name and created["VersionId"] == "v1"
    assert created["Arn"].startswith("acs:kms:cn-hangzhou:") and created["Arn"].endswith(f":secret/{name}")
    assert created["DKMSInstanceId"] == instance_id and created["SecretType"] == "Generic"
    value = kms.call("GetSecretValue", SecretName=name)
    assert value["SecretData"] == "pa ss+word/=é" and value["SecretDataType"] == "text"
    assert value["VersionId"] == "v1" and value["VersionStages"]["VersionStage"] == ["ACSCurrent"]
    put = kms.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="second")
    assert put["VersionStages"]["VersionStage"] == ["ACSCurrent"]
    assert kms.call("GetSecretValue", SecretName=name)["SecretData"] == "second"
    previous = kms.call("GetSecretValue", SecretName=name, VersionStage="ACSPrevious")
    assert (previous["VersionId"], previous["SecretData"]) == ("v1", "pa ss+word/=é")


def test_versions_and_stages(sdk: KmsCaller, secret_key: str) -> None:
    name = unique()
    _create(sdk, secret_key, name, "one")
    sdk.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="two")
    sdk.call("PutSecretValue", SecretName=name, VersionId="v3", SecretData="three")
    listed = sdk.call("ListSecretVersionIds", SecretName=name)
    stages = {v["VersionId"]: v["VersionStages"]["VersionStage"] for v in listed["VersionIds"]["VersionId"]}
    assert stages == {"v2": ["ACSPrevious"], "v3": ["ACSCurrent"]} and listed["TotalCount"] == 2
    everything = sdk.call("ListSecretVersionIds", SecretName=name, IncludeDeprecated="true")
    assert [v["VersionId"] for v in everything["VersionIds"]["VersionId"]] == ["v1", "v2", "v3"]
    paged = sdk.call(
        "ListSecretVersionIds", SecretName=name, IncludeDeprecated="true", PageSize=2, PageNumber=2
    )
    assert [v["VersionId"] for v in paged["VersionIds"]["VersionId"]] == ["v3"] and paged["TotalCount"] == 3
    # A deprecated version still opens by id; a custom stage put with a version does not move ACSCurrent.
    assert sdk.call("GetSecretValue", SecretName=name, VersionId="v1")["SecretData"] == "one"
    sdk.call("PutSecretValue", SecretName=name, VersionId="v4", SecretData="four", VersionStages='["Next"]')
    assert sdk.call("GetSecretValue", SecretName=name)["VersionId"] == "v3"
    assert sdk.call("GetSecretValue", SecretName=name, VersionStage="Next")["SecretData"] == "four"
    # Roll ACSCurrent forward to v4: v3 becomes ACSPrevious.
    sdk.call(
        "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", MoveToVersion="v4",
        RemoveFromVersion="v3",
    )  # fmt: skip
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "four"
    assert sdk.call("GetSecretValue", SecretName=name, VersionStage="ACSPrevious")["VersionId"] == "v3"
    # A custom stage is removed outright; ACSCurrent and ACSPrevious only move.
    sdk.call("UpdateSecretVersionStage", SecretName=name, VersionStage="Next", RemoveFromVersion="v4")
    refused(
        lambda: sdk.call("GetSecretValue", SecretName=name, VersionStage="Next"),
        "Forbidden.ResourceNotFound",
        404,
    )
    refused(
        lambda: sdk.call(
            "UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", RemoveFromVersion="v4"
        ),
        "InvalidParameter",
        400,
    )
    refused(
        lambda: sdk.call("UpdateSecretVersionStage", SecretName=name, VersionStage="X", MoveToVersion="v9"),
        "InvalidParameter",
        400,
    )
    refused(
        lambda: sdk.call("GetSecretValue", SecretName=name, VersionId="v9"), "Forbidden.ResourceNotFound", 404
    )
    refused(
        lambda: sdk.call("GetSecretValue", SecretName=name, VersionId="v1", VersionStage="ACSCurrent"),
        "InvalidParameter",
        400,
    )
    refused(
        lambda: sdk.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="again"),
        "Rejected.ResourceExist",
        400,
    )
    assert sdk.call("GetSecretValue", SecretName=name, VersionId="v2")["SecretData"] == "two"


def test_binary_values_and_batch(sdk: KmsCaller, secret_key: str) -> None:
    raw = bytes(range(256))
    name, other = unique(), unique()
    _create(sdk, secret_key, name, base64.b64encode(raw).decode(), SecretDataType="binary")
    value = sdk.call("GetSecretValue", SecretName=name)
    assert value["SecretDataType"] == "binary" and base64.b64decode(value["SecretData"]) == raw
    _create(sdk, secret_key, other, "plain")
    refused(
        lambda: _create(sdk, secret_key, unique(), "not base64!", SecretDataType="binary"),
        "InvalidParameter",
        400,
    )
    batch = sdk.call(
        "BatchGetSecretValue",
        SecretsList=[
            {"SecretName": name},
            {"SecretName": other, "VersionStage": "ACSCurrent"},
            {"SecretName": "no-such-secret"},
        ],
    )
    got = {v["SecretName"]: v["SecretData"] for v in batch["SecretValues"]}
    assert got == {name: base64.b64encode(raw).decode(), other: "plain"}
    assert [(e["SecretName"], e["Code"]) for e in batch["Errors"]] == [
        ("no-such-secret", "Forbidden.ResourceNotFound")
    ]
    refused(
        lambda: sdk.call("BatchGetSecretValue", SecretsList=[{"SecretName": f"s{i}"} for i in range(21)]),
        "InvalidParameter",
        400,
    )


def _secret_tags(sdk: KmsCaller, name: str) -> dict[str, str]:
    """A secret's tags by ListTagResources (the SDK's ListResourceTags takes only a KeyId)."""
    rows = sdk.call("ListTagResources", ResourceType="secret", ResourceId=[name])["TagResources"][
        "TagResource"
    ]
    return {row["TagKey"]: row["TagValue"] for row in rows}


def test_describe_list_update_and_tags(sdk: KmsCaller, secret_key: str, instance_id: str) -> None:
    prefix = unique("list")
    names = [f"{prefix}-{i}" for i in range(3)]
    for index, name in enumerate(names):
        _create(sdk, secret_key, name, Tags=json.dumps([{"TagKey": "team", "TagValue": f"t{index % 2}"}]))
    described = sdk.call("DescribeSecret", SecretName=names[0], FetchTags="true")
    assert described["EncryptionKeyId"] == secret_key and described["DKMSInstanceId"] == instance_id
    assert described["Tags"]["Tag"] == [{"TagKey": "team", "TagValue": "t0"}]
    assert "PlannedDeleteTime" not in described
    sdk.call("UpdateSecret", SecretName=names[0], Description="changed")
    # The SDK flattens ExtendedConfig; a Generic secret ignores it, as Alibaba's does.
    sdk.call("UpdateSecret", SecretName=names[0], ExtendedConfig={"CustomData": {"k": "v"}})
    assert sdk.call("DescribeSecret", SecretName=names[0])["Description"] == "changed"
    by_name = sdk.call("ListSecrets", Filters=json.dumps([{"Key": "SecretName", "Values": names[:2]}]))
    assert sorted(s["SecretName"] for s in by_name["SecretList"]["Secret"]) == names[:2]
    by_tag = sdk.call(
        "ListSecrets",
        FetchTags="true",
        Filters=json.dumps([{"Key": "SecretName", "Values": names}, {"Key": "TagValue", "Values": ["t0"]}]),
    )
    assert sorted(s["SecretName"] for s in by_tag["SecretList"]["Secret"]) == [names[0], names[2]]
    assert all(s["Tags"]["Tag"] for s in by_tag["SecretList"]["Secret"])
    paged = sdk.call(
        "ListSecrets", PageSize=1, PageNumber=2, Filters=json.dumps([{"Key": "SecretName", "Values": names}])
    )
    assert paged["TotalCount"] == 3 and len(paged["SecretList"]["Secret"]) == 1
    refused(
        lambda: sdk.call("ListSecrets", Filters=json.dumps([{"Key": "Colour", "Values": ["x"]}])),
        "InvalidParameter",
        400,
    )
    # The tag actions take secrets, old shape and new.
    sdk.call("TagResource", SecretName=names[1], Tags=json.dumps([{"TagKey": "env", "TagValue": "prod"}]))
    assert _secret_tags(sdk, names[1]) == {"team": "t1", "env": "prod"}
    sdk.call("UntagResource", SecretName=names[1], TagKeys=json.dumps(["team"]))
    sdk.call(
        "TagResources",
        ResourceType="secret",
        ResourceId=[names[1], names[2]],
        Tag=[{"Key": "k", "Value": "v"}],
    )
    rows = sdk.call("ListTagResources", ResourceType="secret", ResourceId=[names[1]])["TagResources"][
        "TagResource"
    ]
    assert {(r["ResourceId"], r["TagKey"], r["TagValue"], r["ResourceType"]) for r in rows} == {
        (names[1], "env", "prod", "secret"),
        (names[1], "k", "v", "secret"),
    }
    sdk.call("UntagResources", ResourceType="secret", ResourceId=[names[2]], All=True)
    assert _secret_tags(sdk, names[2]) == {}
    too_many = json.dumps([{"TagKey": f"t{i}", "TagValue": "x"} for i in range(20)])  # 21 with "team"
    refused(
        lambda: sdk.call("TagResource", SecretName=names[0], Tags=too_many), "Rejected.LimitExceeded", 400
    )


def test_create_refusals_change_nothing(sdk: KmsCaller, secret_key: str, instance_id: str) -> None:
    name = unique()
    _create(sdk, secret_key, name)
    refused(lambda: _create(sdk, secret_key, name, "other"), "Rejected.ResourceExist", 400)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cr3t"
    pair = sdk.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")
    asymmetric = pair["KeyMetadata"]["KeyId"]
    bad = [
        (lambda: _create(sdk, asymmetric, unique()), "InvalidParameter", 400),  # F2.1: symmetric only
        (lambda: _create(sdk, "key-doesnotexist0000000000", unique()), "Forbidden.KeyNotFound", 404),
        (lambda: _create(sdk, secret_key, "acs/reserved"), "InvalidParameter", 400),
        (lambda: _create(sdk, secret_key, "bad name!"), "InvalidParameter", 400),
        (lambda: _create(sdk, secret_key, unique(), "x" * 30721), "InvalidParameter", 400),
        (lambda: _create(sdk, secret_key, unique(), SecretType="Rds"), "UnsupportedOperation", 400),
        (lambda: _create(sdk, secret_key, unique(), Policy="{not json"), "MalformedPolicyDocument", 400),
        (lambda: _create(sdk, secret_key, unique(), DKMSInstanceId="kst-other"), "InvalidParameter", 400),
        (lambda: sdk.call("CreateSecret", SecretName=unique(), SecretData="x"), "MissingVersionId", 400),
    ]
    for call, code, status in bad:
        refused(call, code, status)
    for missing in ("no-such-secret", "acs:kms:cn-hangzhou:1234567890123456:secret/no-such"):
        for action in (
            "GetSecretValue",
            "DescribeSecret",
            "ListSecretVersionIds",
            "DeleteSecret",
            "GetSecretPolicy",
        ):
            refused(
                lambda action=action, missing=missing: sdk.call(action, SecretName=missing),
                "Forbidden.ResourceNotFound",
                404,
            )


def test_default_service_key(sdk: KmsCaller) -> None:
    name = unique()
    sdk.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="under the service key")
    key_id = sdk.call("DescribeSecret", SecretName=name)["EncryptionKeyId"]
    assert sdk.call("DescribeKey", KeyId="alias/acs/secretsmanager")["KeyMetadata"]["KeyId"] == key_id
    assert "DKMSInstanceId" not in sdk.call("DescribeSecret", SecretName=name)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "under the service key"


def test_disabled_key_makes_the_value_unreadable(sdk: KmsCaller, secret_key: str) -> None:
    name = unique()
    _create(sdk, secret_key, name)
    sdk.call("DisableKey", KeyId=secret_key)
    refused(lambda: sdk.call("GetSecretValue", SecretName=name), "Rejected.Disabled", 400)
    refused(
        lambda: sdk.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="x"),
        "Rejected.Disabled",
        400,
    )
    assert sdk.call("DescribeSecret", SecretName=name)["SecretName"] == name  # metadata stays readable
    sdk.call("EnableKey", KeyId=secret_key)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cr3t"
    assert [
        v["VersionId"] for v in sdk.call("ListSecretVersionIds", SecretName=name)["VersionIds"]["VersionId"]
    ] == ["v1"]


def test_get_secret_value_dry_run_checks_everything_and_reads_nothing(
    sdk: KmsCaller, secret_key: str
) -> None:
    """DryRun=true finds and authorizes the secret, its version and the key's Decrypt, then answers
    DryRunOperation; a check that fails answers its own refusal; Recipient is refused by name."""
    name = unique()
    _create(sdk, secret_key, name)
    passed = refused(lambda: sdk.call("GetSecretValue", SecretName=name, DryRun=True), "DryRunOperation", 400)
    assert "s3cr3t" not in passed.message
    refused(
        lambda: sdk.call("GetSecretValue", SecretName=name, VersionId="nope", DryRun=True),
        "Forbidden.ResourceNotFound",
        404,
    )
    sdk.call("DisableKey", KeyId=secret_key)
    refused(lambda: sdk.call("GetSecretValue", SecretName=name, DryRun=True), "Rejected.Disabled", 400)
    sdk.call("EnableKey", KeyId=secret_key)
    recipient = refused(
        lambda: sdk.call("GetSecretValue", SecretName=name, Recipient="{}"), "UnsupportedOperation", 400
    )
    assert "Recipient" in recipient.message


def test_delete_restore_and_force(sdk: KmsCaller, secret_key: str) -> None:
    name = unique()
    _create(sdk, secret_key, name)
    refused(
        lambda: sdk.call("DeleteSecret", SecretName=name, RecoveryWindowInDays="3"), "InvalidParameter", 400
    )
    deleted = sdk.call("DeleteSecret", SecretName=name, RecoveryWindowInDays="7")
    assert deleted["PlannedDeleteTime"] == sdk.call("DescribeSecret", SecretName=name)["PlannedDeleteTime"]
    for call in (
        lambda: sdk.call("GetSecretValue", SecretName=name),
        lambda: sdk.call("PutSecretValue", SecretName=name, VersionId="v2", SecretData="x"),
        lambda: sdk.call("UpdateSecret", SecretName=name, Description="x"),
        lambda: sdk.call("DeleteSecret", SecretName=name),
    ):
        refused(call, "Rejected.ResourceInDeleteWindow", 409)
    refused(lambda: _create(sdk, secret_key, name), "Rejected.ResourceExist", 400)
    sdk.call("RestoreSecret", SecretName=name)
    assert "PlannedDeleteTime" not in sdk.call("DescribeSecret", SecretName=name)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cr3t"
    refused(
        lambda: sdk.call(
            "DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true", RecoveryWindowInDays="7"
        ),
        "InvalidParameter",
        400,
    )
    sdk.call("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")
    refused(lambda: sdk.call("DescribeSecret", SecretName=name), "Forbidden.ResourceNotFound", 404)
    _create(sdk, secret_key, name, "reborn")  # the name is free again
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "reborn"


def test_random_password(sdk: KmsCaller) -> None:
    password = sdk.call("GetRandomPassword")["RandomPassword"]
    assert len(password) == 32
    digits = sdk.call(
        "GetRandomPassword", PasswordLength="12", ExcludeLowercase="true", ExcludeUppercase="true",
        ExcludePunctuation="true", ExcludeCharacters="0",
    )["RandomPassword"]  # fmt: skip
    assert len(digits) == 12 and set(digits) <= set(string.digits) - {"0"}
    refused(lambda: sdk.call("GetRandomPassword", PasswordLength="7"), "InvalidParameter", 400)
    refused(
        lambda: sdk.call(
            "GetRandomPassword",
            ExcludeLowercase="true",
            ExcludeUppercase="true",
            ExcludeNumbers="true",
            ExcludePunctuation="true",
        ),
        "InvalidParameter",
        400,
    )
