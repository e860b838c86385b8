"""Alibaba's secrets-manager client library (`alibabacloud-secretsmanager-client-v2`), unchanged, against a
live server: it fetches a text and a binary secret, serves them from its cache, and after
PutSecretValue serves the new value once it refreshes; a missing secret and a caller without
kms:GetSecretValue get Alibaba's codes.

The library is pointed at OpenKMS with its own `add_config` (an OpenAPI `Config` naming the endpoint),
which is how it is set up for any endpoint it does not know. Its environment and `.properties` routes,
its predecessor `aliyun-secret-manager-client` and the unified KMS SDK pin packages that clash with
this venv; they are tested in the clients' venv by tests/clients/test_python_secrets_clients.py."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from alibabacloud_secretsmanager_client_v2.secret_manager_cache_client import SecretManagerCacheClient
from alibabacloud_secretsmanager_client_v2.secret_manager_cache_client_builder import (
    SecretManagerCacheClientBuilder,
)
from alibabacloud_secretsmanager_client_v2.service.default_secret_manager_client_builder import (
    DefaultSecretManagerClientBuilder,
)
from alibabacloud_tea_openapi.models import Config
from Tea.exceptions import TeaException

from tests.api.test_identities import new_user
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


def _client(server: LiveServer, access_key_id: str, secret: str, **ttl: int) -> SecretManagerCacheClient:
    config = Config(
        access_key_id=access_key_id,
        access_key_secret=secret,
        endpoint=server.endpoint,
        region_id="cn-hangzhou",
        protocol="http",
    )
    secrets_client = DefaultSecretManagerClientBuilder.standard().add_config(config).build()
    builder = SecretManagerCacheClientBuilder.new_cache_client_builder(secrets_client)
    for name, seconds in ttl.items():
        builder = builder.with_secret_ttl(name, seconds * 1000)
    return builder.build()


@pytest.fixture
def kms(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
def names(kms: KmsCaller, instance_id: str) -> Iterator[tuple[str, str]]:
    key_id = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    text, binary = f"app/db-{uuid.uuid4().hex[:8]}", f"app/blob-{uuid.uuid4().hex[:8]}"
    kms.call("CreateSecret", SecretName=text, VersionId="v1", SecretData="first", EncryptionKeyId=key_id)
    kms.call(
        "CreateSecret",
        SecretName=binary,
        VersionId="v1",
        SecretData=base64.b64encode(b"\x00\x01binary\xff").decode(),
        SecretDataType="binary",
        EncryptionKeyId=key_id,
    )
    yield text, binary
    for name in (text, binary):
        kms.call("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")


def test_fetches_caches_and_refreshes(server: LiveServer, kms: KmsCaller, names: tuple[str, str]) -> None:
    text, binary = names
    client = _client(server, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    try:
        info = client.get_secret_info(text)
        assert (info.secret_name, info.secret_value, info.secret_data_type) == (text, "first", "text")
        assert info.version_id == "v1" and client.get_secret_value(text) == "first"
        # A binary secret arrives as GetSecretValue answers it, base64 text. (The library's own
        # get_binary_value cannot work with any server: it hands bytes to bytebuffer's
        # ByteBuffer.wrap, which takes only a bytearray.)
        blob = client.get_secret_info(binary)
        assert blob.secret_data_type == "binary"
        assert base64.b64decode(blob.secret_value) == b"\x00\x01binary\xff"
        kms.call("PutSecretValue", SecretName=text, VersionId="v2", SecretData="second")
        assert client.get_secret_value(text) == "first"  # served from the library's cache
        assert client.refresh_now(text)  # the library's own forced refresh
        assert client.get_secret_value(text) == "second"
        assert client.get_secret_info(text).version_id == "v2"
    finally:
        client.close()


def test_missing_secret_and_refusal(server: LiveServer, names: tuple[str, str]) -> None:
    text, _ = names
    client = _client(server, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    try:
        with pytest.raises(TeaException) as caught:
            client.get_secret_info(f"app/none-{uuid.uuid4().hex[:8]}")
        assert caught.value.code == "Forbidden.ResourceNotFound"
    finally:
        client.close()
    _, key_id, secret = new_user(Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET))
    outsider = _client(server, key_id, secret)  # a RAM user with no policy at all
    try:
        with pytest.raises(TeaException) as caught:
            outsider.get_secret_info(text)
        assert caught.value.code == "Forbidden.NoPermission"
    finally:
        outsider.close()
