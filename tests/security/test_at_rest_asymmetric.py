"""Private keys are stored wrapped: after an asymmetric workload no private-key component, PKCS#8 blob
or decrypted plaintext appears anywhere in the data directory, the audit log or the server log (P6)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.security.test_at_rest import _forms, _kms, _version_material
from tests.support.server import LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data").start()
    yield server
    server.stop()


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def test_no_private_key_or_asymmetric_plaintext_reaches_the_data_directory(live: LiveServer) -> None:
    kms = _kms(live)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    canaries: list[bytes] = []
    for spec, usage in (("RSA_2048", "ENCRYPT/DECRYPT"), ("EC_P256", "SIGN/VERIFY")):
        meta = kms.call("CreateKey", DKMSInstanceId=instance, KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        target = {"KeyId": meta["KeyId"], "KeyVersionId": meta["PrimaryKeyVersion"]}
        pem = kms.call("GetPublicKey", **target)["PublicKey"]
        public_key = serialization.load_pem_public_key(pem.encode())
        if isinstance(public_key, rsa.RSAPublicKey):
            plaintext = b"canary-" + secrets.token_hex(16).encode()
            canaries.append(plaintext)
            oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
            blob = base64.b64encode(public_key.encrypt(plaintext, oaep)).decode()
            opened = kms.call(
                "AsymmetricDecrypt", Algorithm="RSAES_OAEP_SHA_256", CiphertextBlob=blob, **target
            )
            assert base64.b64decode(opened["Plaintext"]) == plaintext
        else:
            digest = base64.b64encode(hashlib.sha256(b"at rest").digest()).decode()
            kms.call("AsymmetricSign", Algorithm="ECDSA_SHA_256", Digest=digest, **target)
    live.stop()

    needles: list[bytes] = []
    for der in _version_material(live.data_dir):
        private_key = serialization.load_der_private_key(der, None)
        needles.append(der)
        if isinstance(private_key, rsa.RSAPrivateKey):
            numbers = private_key.private_numbers()
            needles += [_int_bytes(numbers.p), _int_bytes(numbers.q), _int_bytes(numbers.d)]
        else:
            assert isinstance(private_key, ec.EllipticCurvePrivateKey)
            needles.append(_int_bytes(private_key.private_numbers().private_value))
    assert len(needles) == 1 + 3 + 1 + 1
    forms = [form for secret in [*canaries, *needles] for form in _forms(secret)]
    scanned = [p for p in live.data_dir.rglob("*") if p.is_file() and p.name != "root.key"]
    assert any(p.name == "openkms.db" for p in scanned)
    for path in [*scanned, live.log_path]:
        assert path is not None
        content = path.read_bytes()
        for needle in forms:
            assert needle not in content, f"secret bytes found in {path.name}"
