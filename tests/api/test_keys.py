"""Key management through the official SDKs, in every signing mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.sdk import KmsCaller, KmsError

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_create_key_in_software_instance_returns_full_metadata(kms: KmsCaller, instance_id: str) -> None:
    created = kms.call(
        "CreateKey",
        DKMSInstanceId=instance_id,
        Description="orders",
        KeySpec="Aliyun_AES_256",
        KeyUsage="ENCRYPT/DECRYPT",
        Origin="Aliyun_KMS",
    )
    meta = created["KeyMetadata"]
    assert meta["KeyId"].startswith("key-")
    assert re.fullmatch(r"acs:kms:cn-hangzhou:\d{16}:key/" + re.escape(meta["KeyId"]), meta["Arn"])
    assert meta["KeyState"] == "Enabled"
    assert meta["KeySpec"] == "Aliyun_AES_256"
    assert meta["KeyUsage"] == "ENCRYPT/DECRYPT"
    assert meta["Origin"] == "Aliyun_KMS"
    assert meta["ProtectionLevel"] == "SOFTWARE"
    assert meta["DKMSInstanceId"] == instance_id
    assert meta["Description"] == "orders"
    assert re.fullmatch(r"\d{16}", meta["Creator"])
    assert ISO.match(meta["CreationDate"])
    assert UUID.match(meta["PrimaryKeyVersion"])
    assert "DeleteDate" not in meta


def test_describe_key_by_id_and_by_arn(kms: KmsCaller, key_id: str) -> None:
    by_id = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]
    by_arn = kms.call("DescribeKey", KeyId=by_id["Arn"])["KeyMetadata"]
    assert by_id == by_arn


def test_describe_unknown_key_is_key_not_found(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeKey", KeyId="key-hzzdoesnotexist000000000")
    assert (caught.value.code, caught.value.status) == ("Forbidden.KeyNotFound", 404)


def test_describe_without_key_id_names_the_missing_parameter(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("DescribeKey")
    assert (caught.value.code, caught.value.status) == ("MissingKeyId", 400)


def test_unknown_spec_and_usage_are_refused_and_create_nothing(kms: KmsCaller, instance_id: str) -> None:
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    for params in (
        {"KeySpec": "Aliyun_AES_512"},
        {"KeyUsage": "SIGN/VERIFY"},
        {"Origin": "Elsewhere"},
        {"Description": "x" * 8193},
    ):
        with pytest.raises(KmsError) as caught:
            kms.call("CreateKey", DKMSInstanceId=instance_id, **params)
        assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before


def test_unknown_instance_is_refused(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("CreateKey", DKMSInstanceId="kst-hzzmissing0000000000000")
    assert (caught.value.code, caught.value.status) == ("Forbidden.InstanceNotFound", 404)


def test_list_keys_pages_and_counts(kms: KmsCaller, instance_id: str) -> None:
    for _ in range(3):
        kms.call("CreateKey", DKMSInstanceId=instance_id)
    total = kms.call("ListKeys", PageSize=100)["TotalCount"]
    assert total >= 3
    seen: list[str] = []
    page = 1
    while True:
        body = kms.call("ListKeys", PageNumber=page, PageSize=2)
        assert (body["PageNumber"], body["PageSize"], body["TotalCount"]) == (page, 2, total)
        keys = body["Keys"]["Key"]
        seen += [key["KeyId"] for key in keys]
        for key in keys:
            assert key["KeyArn"].endswith(":key/" + key["KeyId"])
        if len(seen) >= total:
            break
        page += 1
    assert len(seen) == len(set(seen)) == total


@pytest.mark.parametrize("size", [0, 101])
def test_list_keys_page_size_bounds(kms: KmsCaller, size: int) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("ListKeys", PageSize=size)
    assert caught.value.code == "InvalidParameter"


def test_list_keys_filters_by_state(kms: KmsCaller, key_id: str) -> None:
    kms.call("DisableKey", KeyId=key_id)
    filters = [{"Key": "KeyState", "Values": ["Disabled"]}]
    disabled = kms.call("ListKeys", PageSize=100, Filters=json.dumps(filters))["Keys"]["Key"]
    assert key_id in {key["KeyId"] for key in disabled}
    enabled = kms.call(
        "ListKeys", PageSize=100, Filters=json.dumps([{"Key": "KeyState", "Values": ["Enabled"]}])
    )["Keys"]["Key"]
    assert key_id not in {key["KeyId"] for key in enabled}
    with pytest.raises(KmsError) as caught:
        kms.call("ListKeys", Filters=json.dumps([{"Key": "Colour", "Values": ["Blue"]}]))
    assert caught.value.code == "InvalidParameter"


def test_disable_and_enable(kms: KmsCaller, key_id: str) -> None:
    kms.call("DisableKey", KeyId=key_id)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.call("EnableKey", KeyId=key_id)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_regions_status_and_instances(kms: KmsCaller, instance_id: str) -> None:
    regions = kms.call("DescribeRegions")["Regions"]["Region"]
    assert {"RegionId": "cn-hangzhou"} in regions
    assert kms.call("DescribeAccountKmsStatus")["AccountStatus"] == "Enabled"
    assert "RequestId" in kms.call("OpenKmsService")
    listed = kms.call("ListKmsInstances")
    assert listed["TotalCount"] == 1
    assert listed["KmsInstances"]["KmsInstance"][0]["KmsInstanceArn"].endswith(instance_id)
    instance = kms.call("GetKmsInstance", KmsInstanceId=instance_id)["KmsInstance"]
    assert instance["InstanceId"] == instance_id
    assert instance["KeyNum"] >= 0
    with pytest.raises(KmsError) as caught:
        kms.call("GetKmsInstance", KmsInstanceId="kst-hzznothere00000000000000")
    assert caught.value.status == 404


def test_list_keys_filters_by_instance_id_alias_and_tag(kms: KmsCaller, instance_id: str) -> None:
    """The filters Alibaba's SDK documents beyond the key's own fields: the console's instance
    selector, its search and its tag filter page through the answer, so the server must filter."""
    made = [kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"] for _ in range(3)]
    suffix = made[0][-8:]
    kms.call("CreateAlias", KeyId=made[0], AliasName=f"alias/filter-{suffix}")
    kms.call("TagResource", KeyId=made[1], Tags=json.dumps([{"TagKey": "team", "TagValue": suffix}]))
    kms.call("TagResource", KeyId=made[2], Tags=json.dumps([{"TagKey": "team", "TagValue": "other"}]))

    def listed(*filters: tuple[str, list[str]]) -> set[str]:
        # Every page (the suite's shared server holds hundreds of keys in the instance).
        given = json.dumps([{"Key": key, "Values": values} for key, values in filters])
        found: list[str] = []
        for page_number in range(1, 1000):
            answer = kms.call("ListKeys", PageSize=100, PageNumber=page_number, Filters=given)
            found += [key["KeyId"] for key in answer["Keys"]["Key"]]
            if len(found) >= answer["TotalCount"] or not answer["Keys"]["Key"]:
                break
        assert len(found) == answer["TotalCount"] == len(set(found))
        return set(found)

    assert set(made) <= listed(("DKMSInstanceId", [instance_id]))
    assert not listed(("DKMSInstanceId", ["kst-hzznothere00000000000000"]))
    assert listed(("AliasName", [f"alias/filter-{suffix}"])) == {made[0]}
    assert listed(("keyId", [made[1], made[2]])) == {made[1], made[2]}
    assert listed(("TagKey", ["team"]), ("TagValue", [suffix])) == {made[1]}
    assert {made[1], made[2]} <= listed(("TagKey", ["team"]), ("DKMSInstanceId", [instance_id]))
    assert listed(("TagValue", [suffix]), ("keyId", [made[2]])) == set()
    paged = kms.call(
        "ListKeys",
        PageSize=1,
        PageNumber=2,
        Filters=json.dumps([{"Key": "keyId", "Values": made}]),
    )
    assert paged["TotalCount"] == 3
    assert [key["KeyId"] for key in paged["Keys"]["Key"]] == [made[1]]
