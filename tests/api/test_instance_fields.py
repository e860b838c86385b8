"""Instances as the SDK models them (issue 17 item 4): GetKmsInstance's fields and their types,
GetKmsInstanceQuotaInfos, GetDefaultKmsInstance, the key quota CreateKey enforces, and DescribeKey's
AutomaticRotation `Suspended` while rotation is paused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import new_postgres_database
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def kms(server: LiveServer) -> KmsCaller:
    """The current SDK (the legacy one has no GetKmsInstanceQuotaInfos); its models drop the
    OpenKMS extension fields, which the console's instances page shows (tests/console)."""
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def test_get_kms_instance_fields_have_the_sdk_types(kms: KmsCaller, instance_id: str) -> None:
    from alibabacloud_kms20160120 import models

    body = kms.call("GetKmsInstance", KmsInstanceId=instance_id)
    instance = body["KmsInstance"]
    # The SDK's own model reads every field back with its declared type.
    model = models.GetKmsInstanceResponseBody().from_map(body).kms_instance
    assert isinstance(model.key_num, int) and model.key_num == 100_000  # key_quota
    assert isinstance(model.secret_num, str) and model.secret_num == "1000"  # secret_quota, a string
    assert isinstance(model.vpc_num, int) and model.vpc_num == 10  # the access quota (F4.3)
    # Spec: rate_crypto_per_account, which the test server raises out of reach.
    assert isinstance(model.spec, int) and model.spec == 1_000_000
    assert model.product_version == "3" and model.deletion_protection is True and model.log == 1
    assert model.start_date == model.create_time and model.status == "Connected"
    assert model.ca_certificate_chain_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert instance["InstanceId"] == instance_id


def test_quota_infos_and_default_instance(kms: KmsCaller, instance_id: str) -> None:
    infos = kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance_id)
    assert infos["KmsInstanceId"] == instance_id
    by_type = {info["ResourceType"]: info for info in infos["KmsInstanceQuotaInfos"]}
    assert list(by_type) == ["key", "secret", "vpc", "qps"]
    assert by_type["key"]["ResourceQuota"] == 100_000
    before = by_type["key"]["UsedQuantity"]
    kms.call("CreateKey", DKMSInstanceId=instance_id)
    after = kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance_id, ResourceType="key")
    assert after["KmsInstanceQuotaInfos"][0]["UsedQuantity"] == before + 1
    assert by_type["vpc"]["ResourceQuota"] == 10 and by_type["vpc"]["UsedQuantity"] >= 0
    assert by_type["qps"] == {"ResourceType": "qps", "ResourceQuota": 1_000_000}  # its use is not kept
    only = kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance_id, ResourceType="key")
    assert [info["ResourceType"] for info in only["KmsInstanceQuotaInfos"]] == ["key"]
    with pytest.raises(KmsError) as caught:
        kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance_id, ResourceType="disk")
    assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)
    with pytest.raises(KmsError) as caught:
        kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId="kst-hzznothere00000000000000")
    assert caught.value.status == 404
    assert kms.call("GetDefaultKmsInstance")["DefaultKmsInstanceId"] == instance_id


def test_automatic_rotation_is_suspended_while_the_key_cannot_rotate(
    kms: KmsCaller, instance_id: str
) -> None:
    key_id = kms.call(
        "CreateKey", DKMSInstanceId=instance_id, EnableAutomaticRotation=True, RotationInterval="604800s"
    )["KeyMetadata"]["KeyId"]

    def rotation() -> str:
        return str(kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["AutomaticRotation"])

    assert rotation() == "Enabled"
    kms.call("DisableKey", KeyId=key_id)
    assert rotation() == "Suspended"
    kms.call("EnableKey", KeyId=key_id)
    assert rotation() == "Enabled"
    kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    assert rotation() == "Suspended"
    kms.call("CancelKeyDeletion", KeyId=key_id)
    assert rotation() == "Enabled"
    plain = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    kms.call("DisableKey", KeyId=plain)
    assert kms.call("DescribeKey", KeyId=plain)["KeyMetadata"]["AutomaticRotation"] == "Disabled"


@pytest.fixture(params=["sqlite", "postgres"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = new_postgres_database() if request.param == "postgres" else None
    live = LiveServer(tmp_path / "data", database_url=url, extra_env={"OPENKMS_KEY_QUOTA": "2"}).start()
    yield live
    live.stop()


def test_create_key_keeps_to_the_key_quota(small: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", small.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    first = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    kms.call("CreateKey", DKMSInstanceId=instance)
    with pytest.raises(KmsError) as caught:
        kms.call("CreateKey", DKMSInstanceId=instance)
    assert (caught.value.code, caught.value.status) == ("Rejected.LimitExceeded", 400)
    assert "key_quota" in caught.value.message
    assert kms.call("ListKeys", PageSize=100)["TotalCount"] == 2  # the refusal made nothing
    # A key pending deletion still counts; the region's customer master key is in no instance.
    kms.call("ScheduleKeyDeletion", KeyId=first, PendingWindowInDays=7)
    with pytest.raises(KmsError):
        kms.call("CreateKey", DKMSInstanceId=instance)
    infos = kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance, ResourceType="key")
    assert infos["KmsInstanceQuotaInfos"] == [{"ResourceType": "key", "ResourceQuota": 2, "UsedQuantity": 2}]
    assert kms.call("GetKmsInstance", KmsInstanceId=instance)["KmsInstance"]["KeyNum"] == 2


def test_list_kms_instances_filters(kms: KmsCaller, instance_id: str) -> None:
    import json

    def listed(*filters: dict[str, object]) -> list[str]:
        body = kms.call("ListKmsInstances", Filters=json.dumps(list(filters)))
        return [item["KmsInstanceId"] for item in body["KmsInstances"]["KmsInstance"]]

    assert listed({"Key": "KmsInstanceId", "Values": [instance_id]}) == [instance_id]
    assert listed({"Key": "ProductType", "Values": ["openkms_software"]}) == [instance_id]
    assert listed({"Key": "Status", "Values": ["Connected", "Disconnected"]}) == [instance_id]
    assert listed({"Key": "ProductType", "Values": ["openkms_hsm"]}) == []
    both = listed({"Key": "KmsInstanceId", "Values": [instance_id]}, {"Key": "Status", "Values": ["Error"]})
    assert both == []  # filters are AND-ed
    body = kms.call("ListKmsInstances", Filters=json.dumps([{"Key": "Status", "Values": ["Error"]}]))
    assert body["TotalCount"] == 0
    for bad in ('[{"Key": "Zone", "Values": ["a"]}]', '[{"Key": "Status"}]', '{"Key": "Status"}', "[["):
        with pytest.raises(KmsError) as caught:
            kms.call("ListKmsInstances", Filters=bad)
        assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)


def test_default_page_sizes_are_alibabas(kms: KmsCaller) -> None:
    """ListKmsInstances pages 20 by default (its API page), ListKeys and ListAliases 10."""
    assert kms.call("ListKmsInstances")["PageSize"] == 20
    assert kms.call("ListKeys")["PageSize"] == 10
    assert kms.call("ListAliases")["PageSize"] == 10
