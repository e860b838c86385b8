"""EncryptionContext as Alibaba's Node.js SDK sends it: flattened into `EncryptionContext.<key>=<value>`
parameters (its `OpenApiUtil.query`, which the Python OpenAPI core shares), against a live server.
A ciphertext made with one form opens with the other; both forms in one request are refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_util import models as util_models
from Tea.exceptions import TeaException

from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

CONTEXT = {"purpose": "backup", "tenant.id": "42", "note": "a b&c=d"}


class FlatCaller:
    """Alibaba's generic OpenAPI caller, parameters flattened the way the Node.js SDK flattens them."""

    def __init__(self, endpoint: str) -> None:
        config = open_api_models.Config(
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            endpoint=endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
        self._client = OpenApiClient(config)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        api = open_api_models.Params(
            action=action,
            version="2016-01-20",
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        request = open_api_models.OpenApiRequest(query=OpenApiUtil.query(params))
        answer: dict[str, Any] = self._client.call_api(api, request, util_models.RuntimeOptions())["body"]
        return answer


@pytest.fixture
def flat(server: LiveServer) -> FlatCaller:
    return FlatCaller(server.endpoint)


@pytest.fixture
def sdk(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_flattened_form_is_the_json_form(flat: FlatCaller, sdk: KmsCaller, instance_id: str) -> None:
    key_id = sdk.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    made_flat = flat.call("Encrypt", KeyId=key_id, Plaintext=_b64("hello"), EncryptionContext=CONTEXT)
    opened = sdk.call("Decrypt", CiphertextBlob=made_flat["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert base64.b64decode(opened["Plaintext"]) == b"hello"
    made_json = sdk.call("Encrypt", KeyId=key_id, Plaintext=_b64("world"), EncryptionContext=CONTEXT)
    opened = flat.call("Decrypt", CiphertextBlob=made_json["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert base64.b64decode(opened["Plaintext"]) == b"world"
    # The context is bound: another one, or none, does not open it.
    with pytest.raises(TeaException) as caught:
        flat.call("Decrypt", CiphertextBlob=made_json["CiphertextBlob"], EncryptionContext={"purpose": "x"})
    assert caught.value.code == "Rejected.InvalidCiphertext"
    # Data keys and ReEncrypt's two contexts take the flattened form too.
    data_key = flat.call("GenerateDataKey", KeyId=key_id, EncryptionContext=CONTEXT)
    assert (
        sdk.call("Decrypt", CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=CONTEXT)["Plaintext"]
        == data_key["Plaintext"]
    )
    other = sdk.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    moved = flat.call(
        "ReEncrypt",
        CiphertextBlob=made_flat["CiphertextBlob"],
        SourceEncryptionContext=CONTEXT,
        DestinationKeyId=other,
        DestinationEncryptionContext={"moved": "yes"},
    )
    opened = sdk.call("Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"moved": "yes"})
    assert base64.b64decode(opened["Plaintext"]) == b"hello"


def test_both_forms_in_one_request_are_refused(flat: FlatCaller, sdk: KmsCaller, instance_id: str) -> None:
    key_id = sdk.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    both = {"EncryptionContext": '{"a":"1"}', "EncryptionContext.a": "1"}
    with pytest.raises(TeaException) as caught:
        flat.call("Encrypt", KeyId=key_id, Plaintext=_b64("x"), **both)
    assert caught.value.code == "InvalidParameter"
    assert "both" in caught.value.message
    # A flattened map on an action that takes no such parameter is refused by name.
    with pytest.raises(TeaException) as caught:
        flat.call("DescribeKey", KeyId=key_id, EncryptionContext={"a": "1"})
    assert caught.value.code == "InvalidParameter"
