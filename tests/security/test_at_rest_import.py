"""Imported material is key material like any other: after importing symmetric keys and private keys
(and deleting one key's material), no form of the material is in the database file, the data
directory, the server log or the audit log."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.byok import envelope, pkcs8, wrap
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data").start()
    yield server
    server.stop()


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def _import(kms: KmsCaller, key_id: str, algorithm: str, encrypt: object) -> None:
    found = kms.call(
        "GetParametersForImport", KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )
    assert callable(encrypt)
    kms.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=encrypt(found["PublicKey"], algorithm),
    )


def test_imported_material_never_reaches_storage_or_logs(live: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", live.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    canaries: list[bytes] = []
    for index, algorithm in enumerate(("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5")):
        key_id = kms.call("CreateKey", DKMSInstanceId=instance, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        material = os.urandom(32)
        canaries.append(material)
        _import(kms, key_id, algorithm, lambda public, alg, m=material: wrap(public, alg, m))
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext="canary")["CiphertextBlob"]
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "canary"
        if index == 0:
            kms.call("DeleteKeyMaterial", KeyId=key_id)
    for spec, private in (
        ("RSA_2048", rsa.generate_private_key(65537, 2048)),
        ("EC_P256", ec.generate_private_key(ec.SECP256R1())),
    ):
        key_id = kms.call(
            "CreateKey", DKMSInstanceId=instance, Origin="EXTERNAL", KeySpec=spec, KeyUsage="SIGN/VERIFY"
        )["KeyMetadata"]["KeyId"]
        der = pkcs8(private)
        _import(kms, key_id, "RSAES_OAEP_SHA_256", lambda public, alg, d=der: envelope(public, alg, d))
        if isinstance(private, rsa.RSAPrivateKey):
            numbers = private.private_numbers()
            canaries += [der, numbers.d.to_bytes(256, "big"), numbers.p.to_bytes(128, "big")]
        else:
            canaries += [der, private.private_numbers().private_value.to_bytes(32, "big")]
    live.stop()

    needles = [form for secret in canaries for form in _forms(secret)]
    scanned = [p for p in live.data_dir.rglob("*") if p.is_file() and p.name != "root.key"]
    assert any(p.name.endswith(".jsonl") for p in scanned), "the audit log should be among the scanned files"
    assert any(p.name == "openkms.db" for p in scanned)
    for path in [*scanned, live.log_path]:
        assert path is not None
        content = path.read_bytes()
        assert content or path.suffix != ".db"
        for needle in needles:
            assert needle not in content, f"imported material found in {path.name}"
