"""Aliases and UpdateKeyDescription through the official SDKs, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.support.sdk import KmsCaller, KmsError, list_all


def _name() -> str:
    return f"alias/test-{uuid.uuid4().hex[:12]}"


def _aliases_of(kms: KmsCaller, key_id: str) -> set[str]:
    listed = kms.call("ListAliasesByKeyId", KeyId=key_id, PageSize=100)
    return {alias["AliasName"] for alias in listed["Aliases"]["Alias"]}


def test_alias_is_accepted_wherever_a_key_id_is(kms: KmsCaller, key_id: str) -> None:
    name = _name()
    kms.call("CreateAlias", AliasName=name, KeyId=key_id)
    meta = kms.call("DescribeKey", KeyId=name)["KeyMetadata"]
    assert meta["KeyId"] == key_id
    alias_arn = meta["Arn"].replace(f"key/{key_id}", name)
    assert kms.call("DescribeKey", KeyId=alias_arn)["KeyMetadata"]["KeyId"] == key_id
    sealed = kms.call("Encrypt", KeyId=name, Plaintext="via alias")
    assert sealed["KeyId"] == key_id
    assert kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == "via alias"
    data_key = kms.call("GenerateDataKey", KeyId=alias_arn)
    assert data_key["KeyId"] == key_id
    assert (
        kms.call("ReEncrypt", CiphertextBlob=sealed["CiphertextBlob"], DestinationKeyId=name)["KeyId"]
        == key_id
    )
    kms.call("DisableKey", KeyId=name)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.call("EnableKey", KeyId=alias_arn)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_list_update_and_delete_alias(kms: KmsCaller, key_id: str, instance_id: str) -> None:
    other = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    name = _name()
    kms.call("CreateAlias", AliasName=name, KeyId=key_id)
    assert _aliases_of(kms, key_id) == {name}
    listed = kms.call("ListAliases", PageSize=100)
    everything = list_all(kms, "ListAliases", "Aliases", "Alias")
    row = next(alias for alias in everything if alias["AliasName"] == name)
    assert row["KeyId"] == key_id
    assert row["AliasArn"].endswith(":" + name) and row["AliasArn"].startswith("acs:kms:cn-hangzhou:")
    assert listed["TotalCount"] >= 1 and listed["PageNumber"] == 1 and listed["PageSize"] == 100
    kms.call("UpdateAlias", AliasName=name, KeyId=other)
    assert kms.call("Encrypt", KeyId=name, Plaintext="x")["KeyId"] == other
    assert _aliases_of(kms, key_id) == set()
    assert _aliases_of(kms, other) == {name}
    kms.call("DeleteAlias", AliasName=name)
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeKey", KeyId=name)
    assert (caught.value.code, caught.value.status) == ("Forbidden.AliasNotFound", 404)
    with pytest.raises(KmsError) as caught:
        kms.call("DeleteAlias", AliasName=name)
    assert caught.value.code == "Forbidden.AliasNotFound"


def test_alias_rules_are_enforced_and_change_nothing(kms: KmsCaller, key_id: str) -> None:
    taken = _name()
    kms.call("CreateAlias", AliasName=taken, KeyId=key_id)
    cases = [
        ({"AliasName": "no-prefix", "KeyId": key_id}, "InvalidParameter"),
        ({"AliasName": "alias/", "KeyId": key_id}, "InvalidParameter"),
        ({"AliasName": "alias/has space", "KeyId": key_id}, "InvalidParameter"),
        ({"AliasName": "alias/" + "a" * 250, "KeyId": key_id}, "InvalidParameter"),
        ({"AliasName": "alias/acs/oss", "KeyId": key_id}, "UnsupportedOperation"),
        ({"AliasName": taken, "KeyId": key_id}, "Rejected.ResourceExist"),
        ({"AliasName": _name(), "KeyId": "key-hzzdoesnotexist000000000"}, "Forbidden.KeyNotFound"),
        ({"AliasName": _name(), "KeyId": taken}, "UnsupportedOperation"),
    ]
    for params, code in cases:
        with pytest.raises(KmsError) as caught:
            kms.call("CreateAlias", **params)
        assert caught.value.code == code, params
        assert caught.value.status in (400, 404)
    assert _aliases_of(kms, key_id) == {taken}
    with pytest.raises(KmsError) as caught:
        kms.call("UpdateAlias", AliasName=_name(), KeyId=key_id)
    assert caught.value.code == "Forbidden.AliasNotFound"
    assert _aliases_of(kms, key_id) == {taken}
    # the longest legal name: 255 characters with the prefix
    longest = "alias/" + "b" * 249
    kms.call("CreateAlias", AliasName=longest, KeyId=key_id)
    assert _aliases_of(kms, key_id) == {taken, longest}
    kms.call("DeleteAlias", AliasName=longest)


def test_unknown_alias_is_alias_not_found_for_crypto(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("Encrypt", KeyId=_name(), Plaintext="x")
    assert (caught.value.code, caught.value.status) == ("Forbidden.AliasNotFound", 404)


def test_update_key_description(kms: KmsCaller, key_id: str) -> None:
    kms.call("UpdateKeyDescription", KeyId=key_id, Description="new words")
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Description"] == "new words"
    with pytest.raises(KmsError) as caught:
        kms.call("UpdateKeyDescription", KeyId=key_id, Description="x" * 8193)
    assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Description"] == "new words"
    kms.call("UpdateKeyDescription", KeyId=key_id, Description="y" * 8192)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Description"] == "y" * 8192
    with pytest.raises(KmsError) as caught:
        kms.call("UpdateKeyDescription", KeyId="key-hzzdoesnotexist000000000", Description="x")
    assert caught.value.code == "Forbidden.KeyNotFound"
