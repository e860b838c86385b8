"""GenerateAndExportDataKey and ExportDataKey through the official SDKs: the exported data key is
unwrapped locally with the caller's private key and matches what Decrypt returns for the KMS blob."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.support.sdk import KmsCaller, KmsError

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
    # Not a data key: Encrypt's plaintext is arbitrary text.
    text_blob = kms.call("Encrypt", KeyId=key_id, Plaintext="not a key!")["CiphertextBlob"]
    _refused(kms, "ExportDataKey", "InvalidParameter", CiphertextBlob=text_blob, **_wrapping())
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
