"""The region's customer master key: CreateKey without DKMSInstanceId, at most one per region."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import new_postgres_database
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    database_url = new_postgres_database() if request.param == "postgres" else None
    live = LiveServer(tmp_path / "data", database_url=database_url).start()
    yield live
    live.stop()


def test_one_customer_master_key_per_region(fresh_server: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", fresh_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    meta = kms.call("CreateKey", Description="the default key")["KeyMetadata"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", meta["KeyId"])
    assert "DKMSInstanceId" not in meta
    assert meta["ProtectionLevel"] == "SOFTWARE"
    sealed = kms.call("Encrypt", KeyId=meta["KeyId"], Plaintext="cmk")
    assert kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == "cmk"

    with pytest.raises(KmsError) as caught:
        kms.call("CreateKey", Description="a second one")
    assert (caught.value.code, caught.value.status) == ("Rejected.ResourceExist", 400)
    assert "one per region" in caught.value.message
    assert kms.call("ListKeys")["TotalCount"] == 1

    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    kms.call("CreateKey", DKMSInstanceId=instance)
    assert kms.call("ListKeys")["TotalCount"] == 2
