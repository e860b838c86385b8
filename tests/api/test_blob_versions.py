"""Which CiphertextBlob version Encrypt writes, through the official SDKs: v2 (Alibaba's shape: the
key-version id in 36 ASCII bytes, the IV, ct || tag) bound to the context's derived Aad, so that the
instance API can open it; v1 (bound to the context's JSON) for a context whose derived Aad would be
ambiguous; and both decrypt. Blobs made before v2 are covered in test_data_key_export.py (a v1 data
key made by hand with the key's material) and tests/unit/test_ciphertext.py."""

from __future__ import annotations

import base64

import pytest

from tests.support.sdk import KmsCaller, KmsError


def _raw(blob: str) -> bytes:
    return base64.b64decode(blob)


def _refused(kms: KmsCaller, **params: object) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("Decrypt", **params)
    assert (caught.value.code, caught.value.status) == ("Rejected.InvalidCiphertext", 400)


def test_encrypt_writes_v2_in_alibabas_shape(kms: KmsCaller, key_id: str) -> None:
    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext="a")
    raw = _raw(sealed["CiphertextBlob"])
    assert raw[:36] == sealed["KeyVersionId"].encode()
    assert len(raw) == 36 + 12 + 1 + 16 > 48  # the unified SDK refuses 48 bytes or fewer
    data_key = kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id, NumberOfBytes=1)
    assert _raw(data_key["CiphertextBlob"])[:36] == data_key["KeyVersionId"].replace("-", "_").encode()


def test_a_context_the_derived_aad_cannot_tell_apart_gets_v1(kms: KmsCaller, key_id: str) -> None:
    """`{"a": "1&b=2"}` and `{"a": "1", "b": "2"}` have the same `k=v&` string: the first is bound as
    JSON (a v1 blob), so neither blob opens with the other context."""
    ambiguous = kms.call("Encrypt", KeyId=key_id, Plaintext="x", EncryptionContext={"a": "1&b=2"})
    plain = kms.call("Encrypt", KeyId=key_id, Plaintext="y", EncryptionContext={"a": "1", "b": "2"})
    assert _raw(ambiguous["CiphertextBlob"])[0] == 0x01 and _raw(plain["CiphertextBlob"])[:36].isascii()
    opened = kms.call("Decrypt", CiphertextBlob=ambiguous["CiphertextBlob"], EncryptionContext={"a": "1&b=2"})
    assert opened["Plaintext"] == "x"
    _refused(kms, CiphertextBlob=ambiguous["CiphertextBlob"], EncryptionContext={"a": "1", "b": "2"})
    _refused(kms, CiphertextBlob=plain["CiphertextBlob"], EncryptionContext={"a": "1&b=2"})
    assert (
        kms.call("Decrypt", CiphertextBlob=plain["CiphertextBlob"], EncryptionContext={"b": "2", "a": "1"})[
            "Plaintext"
        ]
        == "y"
    )


@pytest.mark.parametrize("context", [{"k=": "v"}, {"k&": "v"}, {"k": "v&"}])
def test_every_ambiguous_shape_round_trips(kms: KmsCaller, key_id: str, context: dict[str, str]) -> None:
    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext="z", EncryptionContext=context)
    assert _raw(sealed["CiphertextBlob"])[0] == 0x01
    assert (
        kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)["Plaintext"]
        == "z"
    )


def test_re_encrypt_of_a_v1_blob_writes_v2(kms: KmsCaller, key_id: str) -> None:
    v1 = kms.call("Encrypt", KeyId=key_id, Plaintext="moved", EncryptionContext={"a": "1&b=2"})[
        "CiphertextBlob"
    ]
    moved = kms.call(
        "ReEncrypt",
        CiphertextBlob=v1,
        SourceEncryptionContext={"a": "1&b=2"},
        DestinationKeyId=key_id,
        DestinationEncryptionContext={"app": "x=y"},
    )
    assert _raw(moved["CiphertextBlob"])[:36] == moved["KeyVersionId"].encode()
    opened = kms.call("Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"app": "x=y"})
    assert opened["Plaintext"] == "moved"
