"""Secrets count against their instance's quota (`secret_quota`), and those outside any instance
against their account's in the region; over it CreateSecret answers Rejected.LimitExceeded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_secrets import refused
from tests.conftest import new_postgres_database
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture(params=["sqlite", "postgres"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    url = new_postgres_database() if request.param == "postgres" else None
    live = LiveServer(tmp_path / "data", database_url=url, extra_env={"OPENKMS_SECRET_QUOTA": "2"}).start()
    yield live
    live.stop()


def test_the_quota_counts_each_instance(small: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", small.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    for name in ("a", "b"):
        kms.call("CreateSecret", SecretName=name, VersionId="v1", SecretData="x", EncryptionKeyId=key_id)
    refused(
        lambda: kms.call(
            "CreateSecret", SecretName="c", VersionId="v1", SecretData="x", EncryptionKeyId=key_id
        ),
        "Rejected.LimitExceeded",
        400,
    )
    # Secrets under the default service key count apart from the instance's.
    kms.call("CreateSecret", SecretName="d", VersionId="v1", SecretData="x")
    # A secret waiting for deletion still counts; one deleted for good frees its place.
    kms.call("DeleteSecret", SecretName="a")
    refused(
        lambda: kms.call(
            "CreateSecret", SecretName="c", VersionId="v1", SecretData="x", EncryptionKeyId=key_id
        ),
        "Rejected.LimitExceeded",
        400,
    )
    kms.call("DeleteSecret", SecretName="a", ForceDeleteWithoutRecovery="true")
    kms.call("CreateSecret", SecretName="c", VersionId="v1", SecretData="x", EncryptionKeyId=key_id)
    names = {s["SecretName"] for s in kms.call("ListSecrets", PageSize=10)["SecretList"]["Secret"]}
    assert names == {"b", "c", "d"}
    # GetKmsInstance states the quota (a string, as the SDK types SecretNum); the quota infos the use.
    assert kms.call("GetKmsInstance", KmsInstanceId=instance)["KmsInstance"]["SecretNum"] == "2"
    infos = kms.call("GetKmsInstanceQuotaInfos", KmsInstanceId=instance, ResourceType="secret")
    assert infos["KmsInstanceQuotaInfos"] == [
        {"ResourceType": "secret", "ResourceQuota": 2, "UsedQuantity": 2}
    ]
