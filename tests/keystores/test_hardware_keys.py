"""Hardware keys through the official SDK: made in a hardware instance (SoftHSM2), every spec and
usage, the OpenKMS extension of additional usages, rotation, disabling, import unwrapped in the token,
scheduled deletion destroying the token's objects, and no key material in the data dir or logs."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.testing.softhsm import SoftHsmToken
from tests.keystores.conftest import KeyStores, extension_call, instance_id_of
from tests.support.byok import envelope, pkcs8, wrap
from tests.support.raw import send, signed_params
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

DIGEST = base64.b64encode(hashlib.sha256(b"hardware").digest()).decode()


def _refused(kms: KmsCaller, code: str, action: str, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert caught.value.code == code, caught.value
    return caught.value


def test_hardware_keys_report_hsm_and_their_specs(kms: KmsCaller, key_stores: KeyStores) -> None:
    for spec in ("Aliyun_AES_256", "Aliyun_AES_192", "Aliyun_AES_128"):
        meta = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware, KeySpec=spec)["KeyMetadata"]
        assert (meta["ProtectionLevel"], meta["KeySpec"], meta["DKMSInstanceId"]) == (
            "HSM",
            spec,
            key_stores.hardware,
        )
        blob = kms.call(
            "Encrypt", KeyId=meta["KeyId"], Plaintext="in the token", EncryptionContext={"a": "b"}
        )["CiphertextBlob"]
        assert (
            kms.call("Decrypt", CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"]
            == "in the token"
        )
        _refused(kms, "Rejected.InvalidCiphertext", "Decrypt", CiphertextBlob=blob)
    software = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    _refused(kms, "InvalidParameter", "CreateKey", DKMSInstanceId=software, KeySpec="Aliyun_AES_128")
    instance = extension_call(key_stores.server, "GetKmsInstance", KmsInstanceId=key_stores.hardware)[
        "KmsInstance"
    ]
    assert isinstance(instance, dict)
    assert instance["OpenKMSKeyStoreKind"] == "hardware" and instance["OpenKMSHealth"] == "Healthy"
    assert key_stores.token.label in instance["OpenKMSHealthDetail"]


def test_additional_usages_are_an_openkms_extension_of_hardware_key_pairs(
    kms: KmsCaller, key_stores: KeyStores
) -> None:
    meta = extension_call(
        key_stores.server,
        "CreateKey",
        DKMSInstanceId=key_stores.hardware,
        KeySpec="RSA_2048",
        KeyUsage="SIGN/VERIFY",
        OpenKMSAdditionalKeyUsages="ENCRYPT/DECRYPT",
    )["KeyMetadata"]
    assert isinstance(meta, dict)
    key_id, version = meta["KeyId"], meta["PrimaryKeyVersion"]
    assert meta["OpenKMSAdditionalKeyUsages"] == "ENCRYPT/DECRYPT"
    described = extension_call(key_stores.server, "DescribeKey", KeyId=key_id)["KeyMetadata"]
    assert isinstance(described, dict)
    assert (described["KeyUsage"], described["OpenKMSAdditionalKeyUsages"]) == (
        "SIGN/VERIFY",
        "ENCRYPT/DECRYPT",
    )
    signature = kms.call(
        "AsymmetricSign", KeyId=key_id, KeyVersionId=version, Algorithm="RSA_PSS_SHA_256", Digest=DIGEST
    )["Value"]
    pem = kms.call("GetPublicKey", KeyId=key_id, KeyVersionId=version)["PublicKey"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.b64decode(signature),
        base64.b64decode(DIGEST),
        padding.PSS(padding.MGF1(hashes.SHA256()), 32),
        utils.Prehashed(hashes.SHA256()),
    )
    sealed = kms.call(
        "AsymmetricEncrypt",
        KeyId=key_id,
        KeyVersionId=version,
        Algorithm="RSAES_OAEP_SHA_1",
        Plaintext=base64.b64encode(b"both").decode(),
    )["CiphertextBlob"]
    opened = kms.call(
        "AsymmetricDecrypt",
        KeyId=key_id,
        KeyVersionId=version,
        Algorithm="RSAES_OAEP_SHA_1",
        CiphertextBlob=sealed,
    )["Plaintext"]
    assert base64.b64decode(opened) == b"both"
    # Software keys and symmetric or EC specs refuse it.
    software = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    for instance, spec, code in (
        (software, "RSA_2048", "UnsupportedOperation"),
        (key_stores.hardware, "EC_P256", "InvalidParameter"),
    ):
        with pytest.raises(KmsError) as caught:
            extension_call(
                key_stores.server,
                "CreateKey",
                DKMSInstanceId=instance,
                KeySpec=spec,
                OpenKMSAdditionalKeyUsages="ENCRYPT/DECRYPT",
            )
        assert caught.value.code == code


def test_rotation_makes_a_new_version_in_the_token_and_old_blobs_still_open(
    kms: KmsCaller, key_stores: KeyStores
) -> None:
    key_id = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware)["KeyMetadata"]["KeyId"]
    before = set(key_stores.token.object_ids())
    old = kms.call("Encrypt", KeyId=key_id, Plaintext="v1")["CiphertextBlob"]
    kms.call("CreateKeyVersion", KeyId=key_id)
    assert len(set(key_stores.token.object_ids()) - before) == 1
    assert kms.call("ListKeyVersions", KeyId=key_id)["TotalCount"] == 2
    new = kms.call("Encrypt", KeyId=key_id, Plaintext="v2")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=old)["Plaintext"] == "v1"
    assert kms.call("Decrypt", CiphertextBlob=new)["Plaintext"] == "v2"
    kms.call("DisableKey", KeyId=key_id)
    _refused(kms, "Rejected.Disabled", "Encrypt", KeyId=key_id, Plaintext="x")
    kms.call("EnableKey", KeyId=key_id)
    assert kms.call("Decrypt", CiphertextBlob=old)["Plaintext"] == "v1"


def _advance(server: LiveServer, duration: str) -> None:
    answer = send(
        server.url, signed_params("DevAdvanceClock", ACCESS_KEY_ID, ACCESS_KEY_SECRET, Duration=duration)
    )
    assert answer.status_code == 200, answer.text


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the job runner did not act in time"
        time.sleep(0.1)


def _import_aes(kms: KmsCaller, key_id: str, material: bytes) -> None:
    found = kms.call(
        "GetParametersForImport",
        KeyId=key_id,
        WrappingAlgorithm="RSAES_OAEP_SHA_1",
        WrappingKeySpec="RSA_2048",
    )
    kms.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=wrap(found["PublicKey"], "RSAES_OAEP_SHA_1", material),
    )


def test_imported_material_is_unwrapped_in_the_token_and_never_stored_or_logged(
    kms: KmsCaller, key_stores: KeyStores
) -> None:
    canary = os.urandom(32)
    key_id = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware, Origin="EXTERNAL")["KeyMetadata"][
        "KeyId"
    ]
    objects_before = key_stores.token.object_ids()
    _import_aes(kms, key_id, canary)
    assert kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="imported")["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"
    # The token holds the caller's material: its blob opens with that key outside OpenKMS.
    raw = base64.b64decode(blob)
    assert AESGCM(canary).decrypt(raw[36:48], raw[48:], _aad(raw)) == b"imported"
    # SoftHSM2 2.6 unwraps with RSAES-OAEP SHA-1 only: SHA-256 is refused clearly, nothing changes.
    other = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware, Origin="EXTERNAL")["KeyMetadata"][
        "KeyId"
    ]
    found = kms.call(
        "GetParametersForImport",
        KeyId=other,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    _refused(
        kms,
        "UnsupportedOperation",
        "ImportKeyMaterial",
        KeyId=other,
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=wrap(found["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
    )
    assert kms.call("DescribeKey", KeyId=other)["KeyMetadata"]["KeyState"] == "PendingImport"
    # DeleteKeyMaterial destroys the token's object; the same material imports again.
    kms.call("DeleteKeyMaterial", KeyId=key_id)
    assert not (key_stores.token.object_ids() - objects_before - _wrapping_ids(key_stores))
    _import_aes(kms, key_id, canary)
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"
    _refused(kms, "InvalidKeyMaterial", "ImportKeyMaterial", KeyId=key_id, **_wrapped_for(kms, key_id))
    # Nowhere on disk or in a log: not raw, not hex, not base64.
    needles = (canary, canary.hex().encode(), base64.b64encode(canary))
    files = [path for path in key_stores.server.data_dir.rglob("*") if path.is_file()]
    files += [key_stores.server.log_path, key_stores.proxy_log]
    for path in files:
        assert path is not None
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"the imported material is in {path}"


def _wrapping_ids(key_stores: KeyStores) -> set[bytes]:
    """Object ids of import wrapping keys still alive (their tokens have not expired yet)."""
    session = key_stores.token.session()
    try:
        from pkcs11 import Attribute, ObjectClass

        return {
            bytes(found[Attribute.ID])
            for found in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            if str(found[Attribute.LABEL]).startswith("openkms-import/")
        } | {
            bytes(found[Attribute.ID])
            for found in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})
            if str(found[Attribute.LABEL]).startswith("openkms-import/")
        }
    finally:
        session.close()


def _wrapped_for(kms: KmsCaller, key_id: str) -> dict[str, str]:
    found = kms.call(
        "GetParametersForImport",
        KeyId=key_id,
        WrappingAlgorithm="RSAES_OAEP_SHA_1",
        WrappingKeySpec="RSA_2048",
    )
    return {
        "ImportToken": found["ImportToken"],
        "EncryptedKeyMaterial": wrap(found["PublicKey"], "RSAES_OAEP_SHA_1", os.urandom(32)),
    }


def _aad(raw: bytes) -> bytes:
    from openkms.domain.ciphertext import blob_aad

    return blob_aad(raw[:36], b"")  # a v2 blob without a context (docs/ciphertexts.md)


def test_scheduled_deletion_destroys_the_objects_in_the_token(kms: KmsCaller, key_stores: KeyStores) -> None:
    aes = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware)["KeyMetadata"]["KeyId"]
    pair = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware, KeySpec="EC_P256K")["KeyMetadata"][
        "KeyId"
    ]
    kms.call("CreateKeyVersion", KeyId=aes)
    blob = kms.call("Encrypt", KeyId=aes, Plaintext="doomed")["CiphertextBlob"]

    def held() -> list[str]:
        return [
            label for label in key_stores.token.object_labels() if label.split("/")[1:2] in ([aes], [pair])
        ]

    assert len(held()) == 4  # two AES versions, and the pair's private and public halves
    for key_id in (aes, pair):
        kms.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    _advance(key_stores.server, "8d")

    def gone() -> bool:
        try:
            kms.call("DescribeKey", KeyId=pair)
        except KmsError:
            return True
        return False

    _eventually(gone)
    # The job destroys the two keys one after the other: wait for both, then for their objects.
    _eventually(lambda: not held())
    assert held() == []
    _refused(kms, "Rejected.InvalidCiphertext", "Decrypt", CiphertextBlob=blob)


def test_a_failing_hsm_refuses_its_own_keys_only_and_writes_nothing(
    kms: KmsCaller, key_stores: KeyStores, softhsm_tokens: tuple[SoftHsmToken, SoftHsmToken]
) -> None:
    spare = softhsm_tokens[1]
    pin_file = key_stores.server.data_dir.parent / "spare.pin"
    pin_file.write_text(spare.pin() + "\n")
    pin_file.chmod(0o600)
    settings = spare.settings()
    made = key_stores.cli(
        "instance",
        "create",
        "--kind",
        "hsm",
        "--module",
        settings["module"],
        "--token-label",
        spare.label,
        "--pin-source",
        f"file:{pin_file}",
    )
    failing = instance_id_of(made)
    software = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    keys_before = kms.call("ListKeys", PageSize=100)["TotalCount"]
    pin_file.write_text("not-the-pin\n")  # the server's first use of this token fails to log in
    error = _refused(kms, "Rejected.KeyStoreUnavailable", "CreateKey", DKMSInstanceId=failing)
    assert error.status == 503 and spare.pin() not in error.message
    assert kms.call("ListKeys", PageSize=100)["TotalCount"] == keys_before  # nothing half-written
    software_key = kms.call("CreateKey", DKMSInstanceId=software)["KeyMetadata"]["KeyId"]
    assert kms.call("Encrypt", KeyId=software_key, Plaintext="fine")["CiphertextBlob"]
    hardware_key = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware)["KeyMetadata"]["KeyId"]
    assert kms.call("Encrypt", KeyId=hardware_key, Plaintext="fine")["CiphertextBlob"]
    pin_file.write_text(spare.pin() + "\n")  # the operator fixes it: the next request logs in
    recovered = kms.call("CreateKey", DKMSInstanceId=failing)["KeyMetadata"]["KeyId"]
    assert kms.call("Encrypt", KeyId=recovered, Plaintext="back")["CiphertextBlob"]


def test_an_rsa_key_pair_is_imported_into_the_token(kms: KmsCaller, key_stores: KeyStores) -> None:
    private_key = rsa.generate_private_key(65537, 2048)
    meta = kms.call(
        "CreateKey",
        DKMSInstanceId=key_stores.hardware,
        KeySpec="RSA_2048",
        KeyUsage="SIGN/VERIFY",
        Origin="EXTERNAL",
    )["KeyMetadata"]
    found = kms.call(
        "GetParametersForImport",
        KeyId=meta["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_1",
        WrappingKeySpec="RSA_2048",
    )
    kms.call(
        "ImportKeyMaterial",
        KeyId=meta["KeyId"],
        ImportToken=found["ImportToken"],
        EncryptedKeyMaterial=envelope(found["PublicKey"], "RSAES_OAEP_SHA_1", pkcs8(private_key)),
    )
    version = kms.call("DescribeKey", KeyId=meta["KeyId"])["KeyMetadata"]["PrimaryKeyVersion"]
    signature = kms.call(
        "AsymmetricSign",
        KeyId=meta["KeyId"],
        KeyVersionId=version,
        Algorithm="RSA_PKCS1_SHA_256",
        Digest=DIGEST,
    )["Value"]
    private_key.public_key().verify(
        base64.b64decode(signature),
        base64.b64decode(DIGEST),
        padding.PKCS1v15(),
        utils.Prehashed(hashes.SHA256()),
    )
