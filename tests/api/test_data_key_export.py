"""GenerateAndExportDataKey and ExportDataKey through the official SDKs: the exported data key is
unwrapped locally with the caller's private key and matches what Decrypt returns for the KMS blob.
ExportDataKey exports only blobs marked as data keys, so it is no Decrypt for a caller denied Decrypt."""

from __future__ import annotations

import base64
import json
import secrets
import struct
import uuid
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, text

from openkms.domain.encryption_context import canonical_context
from openkms.keystore import KeyFileRoot, Keystore
from openkms.repository.keyring import DatabaseKeyringStore
from tests.support.products import Caller
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

NOT_A_DATA_KEY = "UnsupportedOperation.NotDataKey"

_CALLER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _blob(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _unwrap(exported: str, algorithm: str) -> bytes:
    hash_type = hashes.SHA256 if algorithm == "RSAES_OAEP_SHA_256" else hashes.SHA1
    oaep = padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)
    return _CALLER_KEY.decrypt(base64.b64decode(exported), oaep)


def _wrapping(algorithm: str = "RSAES_OAEP_SHA_256") -> dict[str, str]:
    return {
        "PublicKeyBlob": _blob(_CALLER_KEY.public_key()),
        "WrappingAlgorithm": algorithm,
        "WrappingKeySpec": "RSA_2048",
    }


def _refused(kms: KmsCaller, action: str, code: str, **params: object) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert (caught.value.code, caught.value.status) == (code, 400), caught.value.message


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"])
def test_generate_and_export_data_key_unwraps_locally_to_the_decrypted_key(
    kms: KmsCaller, key_id: str, algorithm: str
) -> None:
    answer = kms.call(
        "GenerateAndExportDataKey",
        KeyId=key_id,
        NumberOfBytes=24,
        EncryptionContext={"app": "export"},
        **_wrapping(algorithm),
    )
    data_key = _unwrap(answer["ExportedDataKey"], algorithm)
    assert len(data_key) == 24
    opened = kms.call("Decrypt", CiphertextBlob=answer["CiphertextBlob"], EncryptionContext={"app": "export"})
    assert opened["Plaintext"] == base64.b64encode(data_key).decode()
    assert (answer["KeyId"], answer["KeyVersionId"]) == (key_id, opened["KeyVersionId"])


def test_export_data_key_re_encrypts_an_existing_data_key(kms: KmsCaller, key_id: str) -> None:
    generated = kms.call("GenerateDataKey", KeyId=key_id, KeySpec="AES_128", EncryptionContext={"k": "v"})
    for algorithm in ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"):
        exported = kms.call(
            "ExportDataKey",
            CiphertextBlob=generated["CiphertextBlob"],
            EncryptionContext={"k": "v"},
            **_wrapping(algorithm),
        )
        assert (exported["KeyId"], exported["KeyVersionId"]) == (key_id, generated["KeyVersionId"])
        assert (
            base64.b64encode(_unwrap(exported["ExportedDataKey"], algorithm)).decode()
            == generated["Plaintext"]
        )


def test_export_refuses_bad_wrapping_parameters_before_making_anything(
    kms: KmsCaller, key_id: str, instance_id: str
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    blob = kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id)["CiphertextBlob"]
    bad: list[tuple[dict[str, object], str]] = [
        ({"WrappingKeySpec": "RSA_3072"}, "InvalidParameter"),
        ({"WrappingKeySpec": "EC_SM2"}, "UnsupportedOperation"),
        ({"WrappingAlgorithm": "SM2PKE"}, "UnsupportedOperation"),
        ({"WrappingAlgorithm": "RSAES_PKCS1_V1_5"}, "InvalidParameter"),
        ({"PublicKeyBlob": "not base64!"}, "InvalidParameter"),
        ({"PublicKeyBlob": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()}, "InvalidParameter"),
        ({"PublicKeyBlob": _blob(small)}, "InvalidParameter"),
        ({"PublicKeyBlob": _blob(ec_public)}, "InvalidParameter"),
    ]
    for override, code in bad:
        params = {**_wrapping(), **override}
        _refused(kms, "ExportDataKey", code, CiphertextBlob=blob, **params)
        _refused(kms, "GenerateAndExportDataKey", code, KeyId=key_id, **params)
    # A data key too long for RSA-2048 OAEP: 190 bytes fit SHA-256, 191 do not.
    assert (
        len(
            _unwrap(
                kms.call("GenerateAndExportDataKey", KeyId=key_id, NumberOfBytes=190, **_wrapping())[
                    "ExportedDataKey"
                ],
                "RSAES_OAEP_SHA_256",
            )
        )
        == 190
    )
    _refused(
        kms, "GenerateAndExportDataKey", "InvalidParameter", KeyId=key_id, NumberOfBytes=191, **_wrapping()
    )
    long_blob = kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id, NumberOfBytes=215)["CiphertextBlob"]
    _refused(
        kms, "ExportDataKey", "InvalidParameter", CiphertextBlob=long_blob, **_wrapping("RSAES_OAEP_SHA_1")
    )
    # Not a data key: an Encrypt result, whatever it holds.
    text_blob = kms.call("Encrypt", KeyId=key_id, Plaintext="not a key!")["CiphertextBlob"]
    _refused(kms, "ExportDataKey", NOT_A_DATA_KEY, CiphertextBlob=text_blob, **_wrapping())
    # The blob's encryption context is still enforced, and an asymmetric KeyId makes no data keys.
    _refused(
        kms,
        "ExportDataKey",
        "Rejected.InvalidCiphertext",
        CiphertextBlob=blob,
        EncryptionContext={"a": "b"},
        **_wrapping(),
    )
    rsa_key = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    _refused(kms, "GenerateAndExportDataKey", "UnsupportedOperation", KeyId=rsa_key, **_wrapping())


# ---- only data keys are exported ------------------------------------------------------------------


def _flip_mark(blob: str) -> str:
    """The blob with its data-key mark flipped: a v2 id's separators, `-` (sealed) or `_` (a data key)."""
    raw = base64.b64decode(blob)
    header = raw[:36]
    flipped = header.replace(b"_", b"-") if b"_" in header else header.replace(b"-", b"_")
    return base64.b64encode(flipped + raw[36:]).decode()


def _marked(blob: str) -> bool:
    return base64.b64decode(blob)[8:9] == b"_"


def test_export_of_the_blob_generate_and_export_made(kms: KmsCaller, key_id: str) -> None:
    made = kms.call("GenerateAndExportDataKey", KeyId=key_id, EncryptionContext={"a": "1"}, **_wrapping())
    again = kms.call(
        "ExportDataKey", CiphertextBlob=made["CiphertextBlob"], EncryptionContext={"a": "1"}, **_wrapping()
    )
    data_key = _unwrap(made["ExportedDataKey"], "RSAES_OAEP_SHA_256")
    assert _unwrap(again["ExportedDataKey"], "RSAES_OAEP_SHA_256") == data_key and len(data_key) == 32
    assert (again["KeyId"], again["KeyVersionId"]) == (made["KeyId"], made["KeyVersionId"])


def test_encrypt_results_are_refused_whatever_they_hold(kms: KmsCaller, key_id: str) -> None:
    """An Encrypt of text that looks exactly like a data key (what ExportDataKey exported before) is
    refused, and so is every ReEncrypt of it: ReEncrypt keeps the mark it found, and adds none."""
    looks_like_a_key = base64.b64encode(secrets.token_bytes(32)).decode()
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext=looks_like_a_key)["CiphertextBlob"]
    assert not _marked(blob)
    _refused(kms, "ExportDataKey", NOT_A_DATA_KEY, CiphertextBlob=blob, **_wrapping())
    moved = kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=key_id)["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=moved)["Plaintext"] == looks_like_a_key
    _refused(kms, "ExportDataKey", NOT_A_DATA_KEY, CiphertextBlob=moved, **_wrapping())

    generated = kms.call("GenerateDataKey", KeyId=key_id, EncryptionContext={"from": "a"})
    assert _marked(generated["CiphertextBlob"])
    re_encrypted = kms.call(
        "ReEncrypt",
        CiphertextBlob=generated["CiphertextBlob"],
        SourceEncryptionContext={"from": "a"},
        DestinationKeyId=key_id,
        DestinationEncryptionContext={"to": "b"},
    )["CiphertextBlob"]
    exported = kms.call(
        "ExportDataKey", CiphertextBlob=re_encrypted, EncryptionContext={"to": "b"}, **_wrapping()
    )
    assert (
        base64.b64encode(_unwrap(exported["ExportedDataKey"], "RSAES_OAEP_SHA_256")).decode()
        == generated["Plaintext"]
    )


def test_the_mark_cannot_be_flipped(kms: KmsCaller, key_id: str) -> None:
    data_key_blob = kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id)["CiphertextBlob"]
    encrypt_blob = kms.call("Encrypt", KeyId=key_id, Plaintext="secret")["CiphertextBlob"]
    unmarked, marked = _flip_mark(data_key_blob), _flip_mark(encrypt_blob)
    for forged in (unmarked, marked):
        _refused(kms, "Decrypt", "Rejected.InvalidCiphertext", CiphertextBlob=forged)
        _refused(
            kms, "ReEncrypt", "Rejected.InvalidCiphertext", CiphertextBlob=forged, DestinationKeyId=key_id
        )
    _refused(kms, "ExportDataKey", NOT_A_DATA_KEY, CiphertextBlob=unmarked, **_wrapping())
    _refused(kms, "ExportDataKey", "Rejected.InvalidCiphertext", CiphertextBlob=marked, **_wrapping())
    # the originals are untouched
    kms.call("ExportDataKey", CiphertextBlob=data_key_blob, **_wrapping())
    assert kms.call("Decrypt", CiphertextBlob=encrypt_blob)["Plaintext"] == "secret"


def _legacy_data_key_blob(server: LiveServer, version_id: str, context: Mapping[str, str]) -> tuple[str, str]:
    """(blob, data key text): a GenerateDataKey result in the encoding before the data-key mark, made
    here with the key version's material (the test's privilege: the data dir's own root key)."""
    engine = create_engine(server.database_url or f"sqlite:///{server.data_dir / 'openkms.db'}")
    try:
        keystore = Keystore(KeyFileRoot(server.data_dir / "root.key"), DatabaseKeyringStore(engine))
        keystore.unseal()
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT v.key_id, v.version_id, k.spec, v.wrapped_material FROM key_versions v "
                    "JOIN keys k ON k.key_id = v.key_id WHERE v.version_id = :version"
                ),
                {"version": version_id},
            ).one()
        material = keystore.unwrap(row.key_id, row.version_id, row.spec, bytes(row.wrapped_material))
    finally:
        engine.dispose()
    # The previous encoding, spelled out: format 0x01 | version UUID | IV | AES-GCM over the base64 text,
    # AAD = len(header) (2 bytes, big-endian) | header | canonical context.
    header = b"\x01" + uuid.UUID(version_id).bytes
    iv = secrets.token_bytes(12)
    data_key = base64.b64encode(secrets.token_bytes(32))
    aad = struct.pack(">H", len(header)) + header + canonical_context(context)
    sealed = AESGCM(material.reveal()).encrypt(iv, data_key, aad)
    return base64.b64encode(header + iv + sealed).decode(), data_key.decode()


def test_a_blob_made_before_the_mark_still_decrypts_and_is_not_exported(
    server: LiveServer, kms: KmsCaller, key_id: str
) -> None:
    version_id = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["PrimaryKeyVersion"]
    blob, data_key = _legacy_data_key_blob(server, version_id, {"era": "old"})
    opened = kms.call("Decrypt", CiphertextBlob=blob, EncryptionContext={"era": "old"})
    assert (opened["Plaintext"], opened["KeyId"], opened["KeyVersionId"]) == (data_key, key_id, version_id)
    _refused(
        kms,
        "ExportDataKey",
        NOT_A_DATA_KEY,
        CiphertextBlob=blob,
        EncryptionContext={"era": "old"},
        **_wrapping(),
    )
    moved = kms.call(
        "ReEncrypt", CiphertextBlob=blob, SourceEncryptionContext={"era": "old"}, DestinationKeyId=key_id
    )["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=moved)["Plaintext"] == data_key
    _refused(kms, "ExportDataKey", NOT_A_DATA_KEY, CiphertextBlob=moved, **_wrapping())


def test_a_user_denied_decrypt_cannot_decrypt_through_export(server: LiveServer) -> None:
    """`kms:*` with `Deny kms:Decrypt`: ExportDataKey of an Encrypt result is refused, so the plaintext
    stays out of reach; data keys (what ExportDataKey is for) are still exported."""
    root_kms = Caller("kms", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = root_kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = root_kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    user, policy = f"exporter-{uuid.uuid4().hex[:10]}", f"all-but-decrypt-{uuid.uuid4().hex[:10]}"
    ram.call("CreateUser", UserName=user)
    access_key = ram.call("CreateAccessKey", UserName=user)["AccessKey"]
    document = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Sid": "NoDecrypt", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    ram.call("CreatePolicy", PolicyName=policy, PolicyDocument=json.dumps(document))
    ram.call("AttachPolicyToUser", UserName=user, PolicyType="Custom", PolicyName=policy)
    user_kms = Caller("kms", server.endpoint, access_key["AccessKeyId"], access_key["AccessKeySecret"])

    secret = base64.b64encode(secrets.token_bytes(32)).decode()  # shaped like a data key on purpose
    blob = user_kms.call("Encrypt", KeyId=key_id, Plaintext=secret)["CiphertextBlob"]
    with pytest.raises(KmsError) as denied:
        user_kms.call("Decrypt", CiphertextBlob=blob)
    assert denied.value.code == "Forbidden.NoPermission"
    for attempt in (
        blob,
        user_kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=key_id)["CiphertextBlob"],
    ):
        with pytest.raises(KmsError) as refused:
            user_kms.call("ExportDataKey", CiphertextBlob=attempt, **_wrapping())
        assert (refused.value.code, refused.value.status) == (NOT_A_DATA_KEY, 400)
        assert secret not in refused.value.message

    generated = user_kms.call("GenerateDataKey", KeyId=key_id)
    exported = user_kms.call("ExportDataKey", CiphertextBlob=generated["CiphertextBlob"], **_wrapping())
    assert (
        base64.b64encode(_unwrap(exported["ExportedDataKey"], "RSAES_OAEP_SHA_256")).decode()
        == generated["Plaintext"]
    )
    without = user_kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id)["CiphertextBlob"]
    exported = user_kms.call("ExportDataKey", CiphertextBlob=without, **_wrapping())
    assert (
        base64.b64encode(_unwrap(exported["ExportedDataKey"], "RSAES_OAEP_SHA_256")).decode()
        == root_kms.call("Decrypt", CiphertextBlob=without)["Plaintext"]
    )
