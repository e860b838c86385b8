"""Bring your own key through the official SDKs, in every signing mode, on SQLite and PostgreSQL: wrap
locally with pyca/cryptography for each wrapping algorithm, import, use, delete, re-import the same
material, refuse other material and bad tokens. Each refusal changes nothing."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.support.byok import ALGORITHMS, envelope, pkcs8, wrap, wrapping_key
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

INCORRECT = "InvalidKeyMaterial"


def _meta(kms: KmsCaller, key_id: str) -> dict[str, Any]:
    return dict(kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"])


def _refused(kms: KmsCaller, action: str, code: str, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert caught.value.code == code, (action, caught.value.code, caught.value.message)
    assert caught.value.status == 400 or code.startswith("Forbidden.KeyNotFound")
    return caught.value


def _external(kms: KmsCaller, instance_id: str, **params: object) -> str:
    created = kms.call("CreateKey", DKMSInstanceId=instance_id, Origin="EXTERNAL", **params)
    return str(created["KeyMetadata"]["KeyId"])


def _params(kms: KmsCaller, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256") -> dict[str, Any]:
    return kms.call(
        "GetParametersForImport", KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )


def _import(kms: KmsCaller, key_id: str, material: bytes, algorithm: str, **extra: object) -> None:
    found = _params(kms, key_id, algorithm)
    kms.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=wrap(found["PublicKey"], algorithm, material),
        **extra,
    )


def test_external_key_waits_for_material(kms: KmsCaller, instance_id: str) -> None:
    key_id = _external(kms, instance_id)
    meta = _meta(kms, key_id)
    assert (meta["Origin"], meta["KeyState"], meta["MaterialExpireTime"]) == ("EXTERNAL", "PendingImport", "")
    assert "PrimaryKeyVersion" not in meta
    _refused(kms, "Encrypt", "Forbidden.KeyStateError", KeyId=key_id, Plaintext="x")
    _refused(kms, "GenerateDataKey", "Forbidden.KeyStateError", KeyId=key_id)
    _refused(kms, "EnableKey", "Forbidden.KeyStateError", KeyId=key_id)
    _refused(kms, "CreateKeyVersion", "UnsupportedOperation", KeyId=key_id)
    assert _meta(kms, key_id) == meta
    # an EXTERNAL key never rotates
    _refused(
        kms,
        "CreateKey",
        "UnsupportedOperation",
        DKMSInstanceId=instance_id,
        Origin="EXTERNAL",
        EnableAutomaticRotation=True,
        RotationInterval="30d",
    )


def test_parameters_for_import(kms: KmsCaller, instance_id: str) -> None:
    key_id = _external(kms, instance_id)
    before = datetime.now(UTC)
    first, second = _params(kms, key_id), _params(kms, key_id, "RSAES_PKCS1_V1_5")
    assert first["KeyId"] == key_id
    assert wrapping_key(first["PublicKey"]).key_size == 2048
    assert first["PublicKey"] != second["PublicKey"]  # a fresh key pair per request
    assert first["ImportToken"] != second["ImportToken"]
    expires = datetime.strptime(first["TokenExpireTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(hours=23, minutes=58) < expires - before <= timedelta(hours=24, minutes=1)
    meta = _meta(kms, key_id)
    for params, code in [
        ({"WrappingAlgorithm": "RSAES_OAEP_SHA_512", "WrappingKeySpec": "RSA_2048"}, "InvalidParameter"),
        ({"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_4096"}, "InvalidParameter"),
        ({"WrappingAlgorithm": "SM2PKE", "WrappingKeySpec": "EC_SM2"}, "UnsupportedOperation"),
    ]:
        _refused(kms, "GetParametersForImport", code, KeyId=key_id, **params)
    ordinary = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    _refused(
        kms,
        "GetParametersForImport",
        "UnsupportedOperation",
        KeyId=ordinary,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    _refused(kms, "DeleteKeyMaterial", "UnsupportedOperation", KeyId=ordinary)
    assert _meta(kms, key_id) == meta


@pytest.fixture
def tea(server: LiveServer) -> KmsCaller:
    """One signing mode, for the tests whose subject is not the wire."""
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def _instance(kms: KmsCaller) -> str:
    return str(kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])


def test_import_use_delete_reimport(kms: KmsCaller, instance_id: str) -> None:
    _round_trip(kms, instance_id, "RSAES_OAEP_SHA_256")


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5"])
def test_each_wrapping_algorithm(tea: KmsCaller, algorithm: str) -> None:
    _round_trip(tea, _instance(tea), algorithm)


def _round_trip(kms: KmsCaller, instance_id: str, algorithm: str) -> None:
    key_id = _external(kms, instance_id)
    material = os.urandom(32)
    expire = int(time.time()) + 30 * 86400
    _import(kms, key_id, material, algorithm, KeyMaterialExpireUnix=expire)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Enabled"
    assert meta["MaterialExpireTime"] == datetime.fromtimestamp(expire, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    version = meta["PrimaryKeyVersion"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="imported")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"

    kms.call("DeleteKeyMaterial", KeyId=key_id)
    meta = _meta(kms, key_id)
    assert (meta["KeyState"], meta["MaterialExpireTime"]) == ("PendingImport", "")
    _refused(kms, "Encrypt", "Forbidden.KeyStateError", KeyId=key_id, Plaintext="x")
    with pytest.raises(KmsError):
        kms.call("Decrypt", CiphertextBlob=blob)

    # other material is refused, and the key stays as it was
    error = _refused(
        kms,
        "ImportKeyMaterial",
        INCORRECT,
        KeyId=key_id,
        ImportToken=(found := _params(kms, key_id, algorithm))["ImportToken"],
        EncryptedKeyMaterial=wrap(found["PublicKey"], algorithm, os.urandom(32)),
    )
    assert _meta(kms, key_id) == meta
    # the same material again: the old ciphertext decrypts, under the same version
    _import(kms, key_id, material, algorithm)
    meta = _meta(kms, key_id)
    assert (meta["KeyState"], meta["PrimaryKeyVersion"], meta["MaterialExpireTime"]) == (
        "Enabled",
        version,
        "",
    )
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"
    # an Enabled key takes its own material again (e.g. a new expiry), never other material; its version
    # stays the same version
    described = kms.call("DescribeKeyVersion", KeyId=key_id, KeyVersionId=version)["KeyVersion"]
    _import(kms, key_id, material, algorithm, KeyMaterialExpireUnix=expire)
    assert _meta(kms, key_id)["MaterialExpireTime"] != ""
    assert kms.call("DescribeKeyVersion", KeyId=key_id, KeyVersionId=version)["KeyVersion"] == described
    again = _refused(
        kms,
        "ImportKeyMaterial",
        INCORRECT,
        KeyId=key_id,
        ImportToken=(found := _params(kms, key_id, algorithm))["ImportToken"],
        EncryptedKeyMaterial=wrap(found["PublicKey"], algorithm, os.urandom(32)),
    )
    assert again.message == error.message
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"


def test_bad_tokens_and_material_change_nothing(kms: KmsCaller, instance_id: str) -> None:
    key_id, other = _external(kms, instance_id), _external(kms, instance_id)
    found = _params(kms, key_id, "RSAES_OAEP_SHA_256")
    token, public = found["ImportToken"], found["PublicKey"]
    good = wrap(public, "RSAES_OAEP_SHA_256", os.urandom(32))
    meta = _meta(kms, key_id)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    invalid = "InvalidImportToken"
    for bad_token in (forged, "OKI1." + "0" * 32 + "." + "A" * 43, "not-a-token"):
        _refused(
            kms, "ImportKeyMaterial", invalid, KeyId=key_id, ImportToken=bad_token, EncryptedKeyMaterial=good
        )
    # a token of another key
    foreign = _params(kms, other)
    _refused(
        kms,
        "ImportKeyMaterial",
        invalid,
        KeyId=key_id,
        ImportToken=foreign["ImportToken"],
        EncryptedKeyMaterial=wrap(foreign["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
    )
    # every material failure answers the same: wrong algorithm, wrong length, another public key, noise
    messages = set()
    for encrypted in (
        wrap(public, "RSAES_PKCS1_V1_5", os.urandom(32)),
        wrap(public, "RSAES_OAEP_SHA_1", os.urandom(32)),
        wrap(public, "RSAES_OAEP_SHA_256", os.urandom(16)),
        wrap(foreign["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        base64.b64encode(os.urandom(256)).decode(),
        base64.b64encode(os.urandom(300)).decode(),
        base64.b64encode(os.urandom(10)).decode(),
    ):
        error = _refused(
            kms,
            "ImportKeyMaterial",
            INCORRECT,
            KeyId=key_id,
            ImportToken=token,
            EncryptedKeyMaterial=encrypted,
        )
        messages.add(error.message)
    assert len(messages) == 1
    _refused(
        kms,
        "ImportKeyMaterial",
        "InvalidParameter",
        KeyId=key_id,
        ImportToken=token,
        EncryptedKeyMaterial=good,
        KeyMaterialExpireUnix=int(time.time()) - 60,
    )
    assert _meta(kms, key_id) == meta
    assert _meta(kms, other)["KeyState"] == "PendingImport"
    # the good material still imports with the same token afterwards
    kms.call("ImportKeyMaterial", KeyId=key_id, ImportToken=token, EncryptedKeyMaterial=good)
    assert _meta(kms, key_id)["KeyState"] == "Enabled"


def _prehashed_verify(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, digest: bytes, value: str) -> None:
    signature = base64.b64decode(value)
    if isinstance(key, rsa.RSAPrivateKey):
        key.public_key().verify(
            signature,
            digest,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            Prehashed(hashes.SHA256()),
        )
    else:
        key.public_key().verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


@pytest.mark.parametrize(
    ("spec", "algorithm"), [("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256")]
)
def test_asymmetric_import_with_the_envelope(tea: KmsCaller, spec: str, algorithm: str) -> None:
    kms, instance_id = tea, _instance(tea)
    key_id = _external(kms, instance_id, KeySpec=spec, KeyUsage="SIGN/VERIFY")
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if spec == "RSA_2048"
        else ec.generate_private_key(ec.SECP256R1())
    )
    wrong: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 3072)
        if spec == "RSA_2048"
        else ec.generate_private_key(ec.SECP256K1())
    )
    found = _params(kms, key_id, "RSAES_OAEP_SHA_256")
    meta = _meta(kms, key_id)
    for bad in (pkcs8(wrong), b"\x30\x03\x02\x01\x00", os.urandom(64)):
        _refused(
            kms,
            "ImportKeyMaterial",
            INCORRECT,
            KeyId=key_id,
            ImportToken=found["ImportToken"],
            EncryptedKeyMaterial=envelope(found["PublicKey"], "RSAES_OAEP_SHA_256", bad),
        )
    assert _meta(kms, key_id) == meta
    for wrapping in ALGORITHMS:
        found = _params(kms, key_id, wrapping)
        kms.call(
            "ImportKeyMaterial",
            KeyId=key_id,
            ImportToken=found["ImportToken"],
            EncryptedKeyMaterial=envelope(found["PublicKey"], wrapping, pkcs8(private)),
        )
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Enabled"
    version = meta["PrimaryKeyVersion"]
    digest = os.urandom(32)
    signed = kms.call(
        "AsymmetricSign",
        KeyId=key_id,
        KeyVersionId=version,
        Algorithm=algorithm,
        Digest=base64.b64encode(digest).decode(),
    )
    _prehashed_verify(private, digest, signed["Value"])
    public = kms.call("GetPublicKey", KeyId=key_id, KeyVersionId=version)["PublicKey"]
    assert public.encode() == private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_an_imported_rsa_key_decrypts(tea: KmsCaller) -> None:
    key_id = _external(tea, _instance(tea), KeySpec="RSA_3072", KeyUsage="ENCRYPT/DECRYPT")
    private = rsa.generate_private_key(65537, 3072)
    found = _params(tea, key_id, "RSAES_PKCS1_V1_5")
    tea.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=envelope(found["PublicKey"], "RSAES_PKCS1_V1_5", pkcs8(private)),
    )
    version = _meta(tea, key_id)["PrimaryKeyVersion"]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    ciphertext = private.public_key().encrypt(b"for the imported key", oaep)
    opened = tea.call(
        "AsymmetricDecrypt",
        KeyId=key_id,
        KeyVersionId=version,
        Algorithm="RSAES_OAEP_SHA_256",
        CiphertextBlob=base64.b64encode(ciphertext).decode(),
    )
    assert base64.b64decode(opened["Plaintext"]) == b"for the imported key"
    # deleting the material refuses the key; the same private key brings the version back
    tea.call("DeleteKeyMaterial", KeyId=key_id)
    _refused(tea, "GetPublicKey", "Forbidden.KeyStateError", KeyId=key_id, KeyVersionId=version)
    found = _params(tea, key_id)
    tea.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=envelope(found["PublicKey"], "RSAES_OAEP_SHA_256", pkcs8(private)),
    )
    assert _meta(tea, key_id)["PrimaryKeyVersion"] == version


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path / "data", extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "0.2"}, extra_args=["--dev-clock"]
    ).start()
    yield live
    live.stop()


def test_the_expiry_job_of_a_live_server(dev_server: LiveServer) -> None:
    kms = KmsCaller("tea-acs3", dev_server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = _external(kms, instance)
    material = os.urandom(32)
    _import(kms, key_id, material, "RSAES_OAEP_SHA_256", KeyMaterialExpireUnix=int(time.time()) + 86400)
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="expiring")["CiphertextBlob"]
    stale = _params(kms, key_id)
    moved = send(
        dev_server.url, signed_params("DevAdvanceClock", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Duration="2d")
    )
    assert moved.status_code == 200, moved.text
    deadline = time.monotonic() + 30
    while _meta(kms, key_id)["KeyState"] != "PendingImport":
        assert time.monotonic() < deadline, "the expiry job did not act in time"
        time.sleep(0.1)
    assert _meta(kms, key_id)["MaterialExpireTime"] == ""
    _refused(kms, "Encrypt", "Forbidden.KeyStateError", KeyId=key_id, Plaintext="x")
    # a token older than 24 hours (by the server's clock) is refused; the key stays as it was
    meta = _meta(kms, key_id)
    _refused(
        kms,
        "ImportKeyMaterial",
        "ExpiredImportToken",
        KeyId=key_id,
        ImportToken=stale["ImportToken"],
        EncryptedKeyMaterial=wrap(stale["PublicKey"], "RSAES_OAEP_SHA_256", material),
    )
    assert _meta(kms, key_id) == meta
    _import(kms, key_id, material, "RSAES_PKCS1_V1_5")
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "expiring"


def test_expired_material_is_refused_before_the_expiry_job_runs(tea: KmsCaller) -> None:
    """The job (every 60 s by default) destroys expired material; use is refused as soon as it expires."""
    instance = tea.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = _external(tea, instance)
    _import(tea, key_id, os.urandom(32), "RSAES_OAEP_SHA_256", KeyMaterialExpireUnix=int(time.time()) + 2)
    blob = tea.call("Encrypt", KeyId=key_id, Plaintext="before expiry")["CiphertextBlob"]
    time.sleep(2.5)
    with pytest.raises(KmsError) as caught:
        tea.call("Encrypt", KeyId=key_id, Plaintext="after expiry")
    assert (caught.value.code, caught.value.status) == ("Forbidden.KeyStateError", 400)
    with pytest.raises(KmsError):
        tea.call("Decrypt", CiphertextBlob=blob)
