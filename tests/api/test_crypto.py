"""Symmetric cryptography through the official SDKs, in every signing mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest

from tests.support.sdk import KmsCaller, KmsError


def test_encrypt_decrypt_round_trip_returns_the_exact_string(kms: KmsCaller, key_id: str) -> None:
    text = "héllo wörld, 你好 + a/b=c&d"
    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext=text)
    meta = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]
    assert sealed["KeyId"] == key_id
    assert sealed["KeyVersionId"] == meta["PrimaryKeyVersion"]
    opened = kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])
    assert opened == {**opened, "Plaintext": text, "KeyId": key_id, "KeyVersionId": sealed["KeyVersionId"]}


def test_encryption_context_is_bound_and_order_insensitive(kms: KmsCaller, key_id: str) -> None:
    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext="secret", EncryptionContext={"a": "1", "b": "2"})
    opened = kms.call(
        "Decrypt", CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"b": "2", "a": "1"}
    )
    assert opened["Plaintext"] == "secret"
    for wrong in ({"a": "1"}, {"a": "1", "b": "3"}, {"A": "1", "b": "2"}, None):
        with pytest.raises(KmsError) as caught:
            kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=wrong)
        assert (caught.value.code, caught.value.status) == ("Rejected.InvalidCiphertext", 400)


def test_plaintext_size_limit(kms: KmsCaller, key_id: str) -> None:
    sealed = kms.call("Encrypt", KeyId=key_id, Plaintext="x" * 6144)
    assert kms.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == "x" * 6144
    with pytest.raises(KmsError) as caught:
        kms.call("Encrypt", KeyId=key_id, Plaintext="x" * 6145)
    assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)


def test_tampered_and_malformed_blobs_are_refused_alike(kms: KmsCaller, key_id: str) -> None:
    blob = base64.b64decode(kms.call("Encrypt", KeyId=key_id, Plaintext="data")["CiphertextBlob"])
    candidates = [blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1 :] for i in (0, 5, 20, len(blob) - 1)]
    encoded = [base64.b64encode(candidate).decode() for candidate in candidates]
    for bad in [*encoded, "not base64!!", base64.b64encode(b"short").decode()]:
        with pytest.raises(KmsError) as caught:
            kms.call("Decrypt", CiphertextBlob=bad)
        assert (caught.value.code, caught.value.status) == ("Rejected.InvalidCiphertext", 400)


def test_disabled_key_refuses_every_cryptographic_operation(kms: KmsCaller, key_id: str) -> None:
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="before")["CiphertextBlob"]
    kms.call("DisableKey", KeyId=key_id)
    calls = [
        ("Encrypt", {"KeyId": key_id, "Plaintext": "x"}),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("GenerateDataKey", {"KeyId": key_id}),
        ("GenerateDataKeyWithoutPlaintext", {"KeyId": key_id}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": key_id}),
    ]
    for action, params in calls:
        with pytest.raises(KmsError) as caught:
            kms.call(action, **params)
        assert (caught.value.code, caught.value.status) == ("Rejected.Disabled", 400), action
    kms.call("EnableKey", KeyId=key_id)
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "before"


def test_re_encrypt_moves_a_ciphertext_to_another_key_and_context(
    kms: KmsCaller, key_id: str, instance_id: str
) -> None:
    other = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="move me", EncryptionContext={"from": "a"})[
        "CiphertextBlob"
    ]
    moved = kms.call(
        "ReEncrypt",
        CiphertextBlob=blob,
        SourceEncryptionContext={"from": "a"},
        DestinationKeyId=other,
        DestinationEncryptionContext={"to": "b"},
    )
    assert moved["KeyId"] == other
    opened = kms.call("Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"to": "b"})
    assert (opened["Plaintext"], opened["KeyId"]) == ("move me", other)


def test_generate_data_key_plaintext_is_base64_and_its_blob_decrypts_to_it(
    kms: KmsCaller, key_id: str
) -> None:
    generated = kms.call("GenerateDataKey", KeyId=key_id, EncryptionContext={"app": "x"})
    assert len(base64.b64decode(generated["Plaintext"], validate=True)) == 32
    opened = kms.call("Decrypt", CiphertextBlob=generated["CiphertextBlob"], EncryptionContext={"app": "x"})
    assert opened["Plaintext"] == generated["Plaintext"]
    assert generated["KeyVersionId"] == opened["KeyVersionId"]


@pytest.mark.parametrize(
    ("params", "length"),
    [
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 1024}, 1024),
        ({"NumberOfBytes": 24, "KeySpec": "AES_128"}, 24),
    ],
)
def test_data_key_lengths(kms: KmsCaller, key_id: str, params: dict[str, object], length: int) -> None:
    generated = kms.call("GenerateDataKey", KeyId=key_id, **params)
    assert len(base64.b64decode(generated["Plaintext"])) == length


@pytest.mark.parametrize("params", [{"NumberOfBytes": 0}, {"NumberOfBytes": 1025}, {"KeySpec": "AES_512"}])
def test_data_key_bounds(kms: KmsCaller, key_id: str, params: dict[str, object]) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("GenerateDataKey", KeyId=key_id, **params)
    assert (caught.value.code, caught.value.status) == ("InvalidParameter", 400)


def test_generate_data_key_without_plaintext(kms: KmsCaller, key_id: str) -> None:
    generated = kms.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id, KeySpec="AES_256")
    assert "Plaintext" not in generated
    opened = kms.call("Decrypt", CiphertextBlob=generated["CiphertextBlob"])
    assert len(base64.b64decode(opened["Plaintext"])) == 32


def test_unknown_key_and_missing_parameters(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("Encrypt", KeyId="key-hzznothere00000000000000", Plaintext="x")
    assert (caught.value.code, caught.value.status) == ("Forbidden.KeyNotFound", 404)
    with pytest.raises(KmsError) as caught:
        kms.call("Encrypt", Plaintext="x")
    assert (caught.value.code, caught.value.status) == ("MissingKeyId", 400)
    with pytest.raises(KmsError) as caught:
        kms.call("Decrypt")
    assert (caught.value.code, caught.value.status) == ("MissingCiphertextBlob", 400)


def test_aliases_are_not_found_until_created(kms: KmsCaller) -> None:
    with pytest.raises(KmsError) as caught:
        kms.call("Encrypt", KeyId="alias/nothing", Plaintext="x")
    assert (caught.value.code, caught.value.status) == ("Forbidden.AliasNotFound", 404)
