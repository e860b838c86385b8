"""External keys through the official SDK: keys of an external instance name their external key (an
OpenKMS extension parameter), one external key may back several keys (F1.4), data is encrypted twice
(OpenKMS's inner key, then the external key manager), the proxy sees who asked for its own audit, and
every failure of the external side is a clear error that changes nothing."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.keystores.conftest import (
    XKS_ACCESS_KEY_ID,
    XKS_PREFIX,
    KeyStores,
    extension_call,
    instance_id_of,
    start_proxy,
)
from tests.support.sdk import KmsCaller, KmsError


def _external_key(
    key_stores: KeyStores, external_key_id: str = "ext-key-1", **params: object
) -> dict[str, object]:
    made = extension_call(
        key_stores.server,
        "CreateKey",
        DKMSInstanceId=key_stores.external,
        OpenKMSExternalKeyId=external_key_id,
        **params,
    )["KeyMetadata"]
    assert isinstance(made, dict)
    return made


def _refused_extension(key_stores: KeyStores, code: str, action: str, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        extension_call(key_stores.server, action, **params)
    assert caught.value.code == code, caught.value
    return caught.value


def _refused(kms: KmsCaller, code: str, action: str, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert caught.value.code == code, caught.value
    return caught.value


def test_external_keys_name_their_external_key_and_double_encrypt(
    kms: KmsCaller, key_stores: KeyStores
) -> None:
    first = _external_key(key_stores, Description="first")
    second = _external_key(key_stores, Description="second")  # the same external key backs both (F1.4)
    for made in (first, second):
        assert (made["ProtectionLevel"], made["KeySpec"], made["KeyUsage"]) == (
            "EXTERNAL",
            "Aliyun_AES_256",
            "ENCRYPT/DECRYPT",
        )
        assert made["OpenKMSExternalKeyId"] == "ext-key-1"
    described = extension_call(key_stores.server, "DescribeKey", KeyId=first["KeyId"])["KeyMetadata"]
    assert isinstance(described, dict) and described["OpenKMSExternalKeyId"] == "ext-key-1"
    one = kms.call("Encrypt", KeyId=first["KeyId"], Plaintext="outer and inner", EncryptionContext={"k": "v"})
    assert kms.call("Decrypt", CiphertextBlob=one["CiphertextBlob"], EncryptionContext={"k": "v"})[
        "Plaintext"
    ] == ("outer and inner")
    _refused(kms, "Rejected.InvalidCiphertext", "Decrypt", CiphertextBlob=one["CiphertextBlob"])
    # Each key has its own inner key: a blob of one never opens as the other's.
    raw = bytearray(base64.b64decode(one["CiphertextBlob"]))
    other_version = kms.call("DescribeKey", KeyId=second["KeyId"])["KeyMetadata"]["PrimaryKeyVersion"]
    assert raw[:36] == one["KeyVersionId"].encode()  # a v2 blob (docs/ciphertexts.md)
    raw[:36] = other_version.encode()
    _refused(
        kms,
        "Rejected.InvalidCiphertext",
        "Decrypt",
        CiphertextBlob=base64.b64encode(bytes(raw)).decode(),
        EncryptionContext={"k": "v"},
    )
    # Data keys, ReEncrypt across kinds, rotation (a new inner version for the same external key).
    data_key = kms.call("GenerateDataKey", KeyId=second["KeyId"], NumberOfBytes=32)
    assert (
        kms.call("Decrypt", CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    )
    software = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    software_key = kms.call("CreateKey", DKMSInstanceId=software)["KeyMetadata"]["KeyId"]
    moved = kms.call(
        "ReEncrypt",
        CiphertextBlob=one["CiphertextBlob"],
        SourceEncryptionContext={"k": "v"},
        DestinationKeyId=software_key,
    )["CiphertextBlob"]
    back = kms.call("ReEncrypt", CiphertextBlob=moved, DestinationKeyId=second["KeyId"])["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=back)["Plaintext"] == "outer and inner"
    kms.call("CreateKeyVersion", KeyId=first["KeyId"])
    assert kms.call("ListKeyVersions", KeyId=first["KeyId"])["TotalCount"] == 2
    assert kms.call("Decrypt", CiphertextBlob=one["CiphertextBlob"], EncryptionContext={"k": "v"})[
        "Plaintext"
    ]


def test_the_proxy_audits_who_asked(kms: KmsCaller, key_stores: KeyStores) -> None:
    made = _external_key(key_stores)
    kms.call("Encrypt", KeyId=made["KeyId"], Plaintext="who asked?")
    records = [
        json.loads(line.split(" xks ", 1)[1])
        for line in key_stores.proxy_log.read_text().splitlines()
        if " xks " in line
    ]
    mine = [r for r in records if r.get("requestMetadata", {}).get("kmsKeyArn") == made["Arn"]]
    encrypts = [r for r in mine if r["operation"] == "encrypt"]
    assert encrypts and encrypts[-1]["outcome"] == "OK"
    metadata = encrypts[-1]["requestMetadata"]
    assert metadata["kmsOperation"] == "Encrypt" and metadata["awsPrincipalArn"].endswith(":root")
    assert metadata["kmsRequestId"]
    assert "who asked" not in key_stores.proxy_log.read_text()  # the proxy never logs plaintext


def test_what_external_keys_refuse(kms: KmsCaller, key_stores: KeyStores) -> None:
    keys_before = kms.call("ListKeys", PageSize=100)["TotalCount"]
    _refused(kms, "MissingOpenKMSExternalKeyId", "CreateKey", DKMSInstanceId=key_stores.external)
    _refused_extension(
        key_stores,
        "Rejected.ExternalKey",
        "CreateKey",
        DKMSInstanceId=key_stores.external,
        OpenKMSExternalKeyId="no-such-key",
    )
    _refused_extension(
        key_stores,
        "Rejected.ExternalKey",
        "CreateKey",
        DKMSInstanceId=key_stores.external,
        OpenKMSExternalKeyId="ext-off",
    )
    _refused_extension(
        key_stores,
        "InvalidParameter",
        "CreateKey",
        DKMSInstanceId=key_stores.external,
        OpenKMSExternalKeyId="ext-key-1",
        KeySpec="RSA_2048",
    )
    _refused_extension(
        key_stores,
        "UnsupportedOperation",
        "CreateKey",
        DKMSInstanceId=key_stores.external,
        OpenKMSExternalKeyId="ext-key-1",
        Origin="EXTERNAL",
    )
    _refused_extension(
        key_stores,
        "UnsupportedOperation",
        "CreateKey",
        DKMSInstanceId=key_stores.hardware,
        OpenKMSExternalKeyId="ext-key-1",
    )
    assert kms.call("ListKeys", PageSize=100)["TotalCount"] == keys_before


def test_a_proxy_that_is_down_refuses_its_keys_only(
    kms: KmsCaller, key_stores: KeyStores, tmp_path: Path
) -> None:
    secret = base64.b64encode(os.urandom(33)).decode()
    proxy, url, _ = start_proxy(tmp_path, key_stores.token, secret)
    try:
        made = key_stores.cli(
            "instance",
            "create",
            "--kind",
            "external",
            "--endpoint",
            url,
            "--path-prefix",
            XKS_PREFIX,
            "--access-key-id",
            XKS_ACCESS_KEY_ID,
            "--allow-http",
            "--timeout",
            "1",
            "--secret-stdin",
            stdin=secret + "\n",
        )
        second = instance_id_of(made)
        key = extension_call(
            key_stores.server, "CreateKey", DKMSInstanceId=second, OpenKMSExternalKeyId="ext-key-2"
        )["KeyMetadata"]
        assert isinstance(key, dict)
        blob = kms.call("Encrypt", KeyId=key["KeyId"], Plaintext="before")["CiphertextBlob"]
    finally:
        proxy.terminate()
        proxy.wait(10)
    error = _refused(kms, "Rejected.KeyStoreUnavailable", "Decrypt", CiphertextBlob=blob)
    assert error.status == 503
    _refused(kms, "Rejected.KeyStoreUnavailable", "Encrypt", KeyId=key["KeyId"], Plaintext="x")
    # The other external instance, hardware and software keys are untouched.
    working = _external_key(key_stores)
    assert kms.call("Encrypt", KeyId=working["KeyId"], Plaintext="fine")["CiphertextBlob"]


def test_an_instance_whose_proxy_refuses_the_credential_is_not_created(key_stores: KeyStores) -> None:
    listed = key_stores.cli("instance", "list")
    assert listed.returncode == 0, listed.stderr  # an empty stdout of a failed run would compare equal
    instances_before = listed.stdout
    made = key_stores.cli(
        "instance",
        "create",
        "--kind",
        "external",
        "--endpoint",
        key_stores.proxy_url,
        "--path-prefix",
        XKS_PREFIX,
        "--access-key-id",
        XKS_ACCESS_KEY_ID,
        "--allow-http",
        "--secret-stdin",
        stdin=base64.b64encode(os.urandom(33)).decode() + "\n",
    )
    assert made.returncode == 1 and "refused" in made.stderr
    listed = key_stores.cli("instance", "list")
    assert listed.returncode == 0 and listed.stdout == instances_before, listed.stderr
