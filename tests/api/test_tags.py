"""Tags through the official SDKs, old API (TagResource...) and new API (TagResources...): rules,
the 20-tag limit, all or nothing. Also ListKeys filters on the lifecycle fields."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.test_identities import create_account
from tests.support.sdk import KmsCaller, KmsError, list_all
from tests.support.server import LiveServer


def _tags(kms: KmsCaller, key_id: str) -> dict[str, str]:
    listed = kms.call("ListResourceTags", KeyId=key_id)["Tags"]["Tag"]
    assert all(tag["KeyId"] == key_id for tag in listed)
    return {tag["TagKey"]: tag["TagValue"] for tag in listed}


def _old(tags: dict[str, str]) -> str:
    return json.dumps([{"TagKey": k, "TagValue": v} for k, v in tags.items()])


def test_old_tag_api(kms: KmsCaller, key_id: str) -> None:
    kms.call("TagResource", KeyId=key_id, Tags=_old({"team": "orders", "env": "dev"}))
    assert _tags(kms, key_id) == {"team": "orders", "env": "dev"}
    kms.call("TagResource", KeyId=key_id, Tags=_old({"env": "prod", "a b/c\\d_e-f.g+h=i:j@k": "v v"}))
    assert _tags(kms, key_id) == {"team": "orders", "env": "prod", "a b/c\\d_e-f.g+h=i:j@k": "v v"}
    kms.call("UntagResource", KeyId=key_id, TagKeys=json.dumps(["team", "absent"]))
    assert _tags(kms, key_id) == {"env": "prod", "a b/c\\d_e-f.g+h=i:j@k": "v v"}


def test_tag_rules_change_nothing(kms: KmsCaller, key_id: str) -> None:
    kms.call("TagResource", KeyId=key_id, Tags=_old({"keep": "1"}))
    bad = [
        {"aliyun-x": "v"},
        {"acs:x": "v"},
        {"k" * 129: "v"},
        {"k": "v" * 129},
        {"bad#char": "v"},
        {"ok": "fine", "bad!": "v"},  # one bad tag: the good one is not written either
    ]
    for tags in bad:
        with pytest.raises(KmsError) as caught:
            kms.call("TagResource", KeyId=key_id, Tags=_old(tags))
        assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400), tags
    assert _tags(kms, key_id) == {"keep": "1"}
    kms.call("TagResource", KeyId=key_id, Tags=_old({f"t{i}": str(i) for i in range(19)}))
    assert len(_tags(kms, key_id)) == 20
    with pytest.raises(KmsError) as caught:
        kms.call("TagResource", KeyId=key_id, Tags=_old({"one-more": "x", "t1": "changed"}))
    assert (caught.value.code, caught.value.status) == ("Rejected.LimitExceeded", 400)
    tags = _tags(kms, key_id)
    assert len(tags) == 20 and tags["t1"] == "1"
    kms.call("TagResource", KeyId=key_id, Tags=_old({"t1": "overwritten"}))  # no new key: allowed
    assert _tags(kms, key_id)["t1"] == "overwritten"
    with pytest.raises(KmsError) as caught:
        kms.call("TagResource", KeyId="key-hzzdoesnotexist000000000", Tags=_old({"a": "b"}))
    assert caught.value.code == "Forbidden.KeyNotFound"


def test_new_tag_api_is_all_or_nothing_across_keys(kms: KmsCaller, key_id: str, instance_id: str) -> None:
    other = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    tag = [{"Key": "project", "Value": "x"}, {"Key": "owner", "Value": "ann"}]
    kms.call("TagResources", ResourceType="key", ResourceId=[key_id, other], Tag=tag)
    for key in (key_id, other):
        assert _tags(kms, key) == {"project": "x", "owner": "ann"}
    listed = kms.call("ListTagResources", ResourceType="key", ResourceId=[key_id, other])
    rows = listed["TagResources"]["TagResource"]
    assert {(r["ResourceId"], r["TagKey"], r["TagValue"]) for r in rows} == {
        (key_id, "project", "x"),
        (key_id, "owner", "ann"),
        (other, "project", "x"),
        (other, "owner", "ann"),
    }
    assert all(r["ResourceType"] == "key" for r in rows)
    only = kms.call("ListTagResources", ResourceType="key", ResourceId=[key_id], Tag=[{"Key": "owner"}])
    assert [(r["TagKey"], r["TagValue"]) for r in only["TagResources"]["TagResource"]] == [("owner", "ann")]
    # one missing key: nothing is tagged anywhere
    with pytest.raises(KmsError) as caught:
        kms.call(
            "TagResources",
            ResourceType="key",
            ResourceId=[key_id, "key-hzzdoesnotexist000000000"],
            Tag=[{"Key": "new", "Value": "1"}],
        )
    assert caught.value.code == "Forbidden.KeyNotFound"
    assert "new" not in _tags(kms, key_id)
    with pytest.raises(KmsError) as caught:
        kms.call(
            "TagResources", ResourceType="key", ResourceId=[key_id], Tag=[{"Key": "aliyun", "Value": "1"}]
        )
    assert caught.value.code == "InvalidParameter"
    with pytest.raises(KmsError) as caught:
        kms.call(
            "TagResources", ResourceType="certificate", ResourceId=[key_id], Tag=[{"Key": "k", "Value": "1"}]
        )
    assert caught.value.code == "UnsupportedOperation"
    with pytest.raises(KmsError) as caught:  # secrets carry tags (test_secrets.py); a key id names none
        kms.call("TagResources", ResourceType="secret", ResourceId=[key_id], Tag=[{"Key": "k", "Value": "1"}])
    assert caught.value.code == "Forbidden.ResourceNotFound"
    kms.call("UntagResources", ResourceType="key", ResourceId=[key_id, other], TagKey=["owner"])
    assert _tags(kms, key_id) == _tags(kms, other) == {"project": "x"}
    kms.call("UntagResources", ResourceType="key", ResourceId=[other], All=True)
    assert _tags(kms, other) == {}
    assert _tags(kms, key_id) == {"project": "x"}


def test_create_key_with_tags(kms: KmsCaller, instance_id: str) -> None:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id, Tags=_old({"env": "dev"}))["KeyMetadata"][
        "KeyId"
    ]
    assert _tags(kms, key_id) == {"env": "dev"}
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    with pytest.raises(KmsError) as caught:
        kms.call("CreateKey", DKMSInstanceId=instance_id, Tags=_old({"acs:reserved": "x"}))
    assert caught.value.code == "InvalidParameter"
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before


def test_list_keys_filters(kms: KmsCaller, key_id: str) -> None:
    def listed(filters: list[dict[str, object]]) -> set[str]:
        return {key["KeyId"] for key in list_all(kms, "ListKeys", "Keys", "Key", Filters=json.dumps(filters))}

    assert key_id in listed([{"Key": "CreatorType", "Values": ["User"]}])
    assert key_id not in listed([{"Key": "CreatorType", "Values": ["Service"]}])
    assert key_id in listed([{"Key": "KeySpec", "Values": ["Aliyun_AES_256"]}])
    assert key_id in listed([{"Key": "KeyUsage", "Values": ["ENCRYPT/DECRYPT"]}])
    assert key_id in listed([{"Key": "ProtectionLevel", "Values": ["SOFTWARE"]}])
    assert key_id not in listed([{"Key": "ProtectionLevel", "Values": ["HSM"]}])
    both = [
        {"Key": "KeyState", "Values": ["Enabled", "PendingDeletion"]},
        {"Key": "CreatorType", "Values": ["User"]},
    ]
    assert key_id in listed(both)
    kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    assert key_id in listed(both)
    assert key_id not in listed([{"Key": "KeyState", "Values": ["Enabled"]}])


def test_untag_resources_all_is_ignored_when_tag_keys_are_given(kms: KmsCaller, key_id: str) -> None:
    tag = [{"Key": "keep", "Value": "1"}, {"Key": "drop", "Value": "2"}]
    kms.call("TagResources", ResourceType="key", ResourceId=[key_id], Tag=tag)
    kms.call("UntagResources", ResourceType="key", ResourceId=[key_id], TagKey=["drop"], All=True)
    assert _tags(kms, key_id) == {"keep": "1"}
    kms.call("UntagResources", ResourceType="key", ResourceId=[key_id], All=False, TagKey=["absent"])
    assert _tags(kms, key_id) == {"keep": "1"}
    kms.call("UntagResources", ResourceType="key", ResourceId=[key_id], All=True)
    assert _tags(kms, key_id) == {}


def test_list_tag_resources_by_tags_alone(kms: KmsCaller, server: LiveServer, instance_id: str) -> None:
    marker = uuid.uuid4().hex[:12]  # tags of this test only (the server is shared)
    both, env_only, other_value = (
        kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"] for _ in range(3)
    )
    kms.call(
        "TagResources", ResourceType="key", ResourceId=[both, env_only], Tag=[{"Key": "env", "Value": marker}]
    )
    kms.call("TagResources", ResourceType="key", ResourceId=[both], Tag=[{"Key": "team", "Value": marker}])
    kms.call(
        "TagResources", ResourceType="key", ResourceId=[other_value], Tag=[{"Key": "env", "Value": "dev"}]
    )
    other = create_account(server)
    stranger = KmsCaller(kms.mode, server.endpoint, other["AccessKeyId"], other["AccessKeySecret"])
    instances = stranger.call("ListKmsInstances")["KmsInstances"]["KmsInstance"]
    theirs = stranger.call("CreateKey", DKMSInstanceId=instances[0]["KmsInstanceId"])["KeyMetadata"]["KeyId"]
    stranger.call(
        "TagResources", ResourceType="key", ResourceId=[theirs], Tag=[{"Key": "env", "Value": marker}]
    )

    def rows(kms: KmsCaller, **params: object) -> set[tuple[str, str, str]]:
        return {(r["ResourceId"], r["TagKey"], r["TagValue"]) for r in _all_tag_rows(kms, **params)}

    assert rows(kms, Tag=[{"Key": "env", "Value": marker}]) == {
        (both, "env", marker),
        (env_only, "env", marker),
    }
    both_tags = [{"Key": "env", "Value": marker}, {"Key": "team", "Value": marker}]
    assert rows(kms, Tag=both_tags) == {(both, "env", marker), (both, "team", marker)}
    assert rows(stranger, Tag=[{"Key": "env", "Value": marker}]) == {(theirs, "env", marker)}
    assert (other_value, "env", "dev") in rows(kms, Tag=[{"Key": "env"}])
    with pytest.raises(KmsError) as caught:
        kms.call("ListTagResources", ResourceType="key")
    assert (caught.value.code, caught.value.status) == ("MissingResourceId", 400)


def _all_tag_rows(kms: KmsCaller, **params: object) -> list[dict[str, str]]:
    """Every row of ListTagResources, following NextToken."""
    rows: list[dict[str, str]] = []
    token = None
    while True:
        body = kms.call("ListTagResources", ResourceType="key", NextToken=token, **params)
        rows += body["TagResources"]["TagResource"]
        token = body["NextToken"]
        if not token:
            return rows


def test_list_tag_resources_pages_with_next_token(kms: KmsCaller, instance_id: str) -> None:
    keys = [kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"] for _ in range(3)]
    for key in keys:
        tags = [{"Key": f"k{i:02d}", "Value": key[-6:]} for i in range(20)]
        kms.call("TagResources", ResourceType="key", ResourceId=[key], Tag=tags)
    first = kms.call("ListTagResources", ResourceType="key", ResourceId=keys)
    assert len(first["TagResources"]["TagResource"]) == 50 and first["NextToken"]
    second = kms.call("ListTagResources", ResourceType="key", ResourceId=keys, NextToken=first["NextToken"])
    assert len(second["TagResources"]["TagResource"]) == 10 and second["NextToken"] == ""
    seen = [(r["ResourceId"], r["TagKey"]) for r in first["TagResources"]["TagResource"]]
    seen += [(r["ResourceId"], r["TagKey"]) for r in second["TagResources"]["TagResource"]]
    assert sorted(seen) == sorted((key, f"k{i:02d}") for key in keys for i in range(20))
    assert len(_all_tag_rows(kms, ResourceId=keys)) == 60
    for bad in ("nonsense", "dGFnczow", "dGFnczotMQ=="):  # garbage, "tags:0", "tags:-1"
        with pytest.raises(KmsError) as caught:
            kms.call("ListTagResources", ResourceType="key", ResourceId=keys, NextToken=bad)
        assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)


def test_list_keys_filters_on_instance_creator_id_alias_and_tags(kms: KmsCaller, instance_id: str) -> None:
    """The other keys the SDK documents: DKMSInstanceId (the console's instance selector), Creator,
    keyId, AliasName, TagKey and TagValue; unknown keys are refused."""
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    marker = uuid.uuid4().hex[:10]
    kms.call("CreateAlias", KeyId=key_id, AliasName=f"alias/{marker}")
    kms.call("TagResources", ResourceType="key", ResourceId=[key_id], Tag=[{"Key": "f", "Value": marker}])
    creator = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["Creator"]

    def listed(*filters: dict[str, object]) -> set[str]:
        found = list_all(kms, "ListKeys", "Keys", "Key", Filters=json.dumps(list(filters)))
        return {key["KeyId"] for key in found}

    assert key_id in listed({"Key": "DKMSInstanceId", "Values": [instance_id]})
    assert key_id not in listed({"Key": "DKMSInstanceId", "Values": ["kst-hzznothere00000000000000"]})
    assert key_id in listed({"Key": "Creator", "Values": [creator]})
    assert listed({"Key": "keyId", "Values": [key_id]}) == {key_id}
    assert listed({"Key": "AliasName", "Values": [f"alias/{marker}"]}) == {key_id}
    assert listed({"Key": "TagKey", "Values": ["f"]}, {"Key": "TagValue", "Values": [marker]}) == {key_id}
    assert listed(
        {"Key": "DKMSInstanceId", "Values": [instance_id]}, {"Key": "keyId", "Values": [key_id]}
    ) == {key_id}
    with pytest.raises(KmsError) as caught:
        kms.call("ListKeys", Filters=json.dumps([{"Key": "Color", "Values": ["red"]}]))
    assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)
