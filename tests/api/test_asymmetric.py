"""Asymmetric keys through the official SDKs, in every signing mode, on SQLite and PostgreSQL.

Signatures are verified locally with pyca/cryptography against the downloaded public key, and data
encrypted locally to that key is decrypted by AsymmetricDecrypt. Keys are made once per server (RSA-4096
generation takes seconds) and shared by the read-only tests; tests that change a key make their own.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from openkms.domain.ciphertext import Ciphertext
from openkms.types import KeyVersionId
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

SIGN = "SIGN/VERIFY"
ENCRYPT = "ENCRYPT/DECRYPT"

SIGNING_CASES = [
    ("RSA_2048", "RSA_PSS_SHA_256"),
    ("RSA_2048", "RSA_PKCS1_SHA_256"),
    ("RSA_3072", "RSA_PSS_SHA_256"),
    ("RSA_3072", "RSA_PKCS1_SHA_256"),
    ("RSA_4096", "RSA_PSS_SHA_256"),
    ("RSA_4096", "RSA_PKCS1_SHA_256"),
    ("EC_P256", "ECDSA_SHA_256"),
    ("EC_P256K", "ECDSA_SHA_256"),
]
ENCRYPTION_CASES = [
    (spec, algorithm, limit)
    for spec, bits in (("RSA_2048", 2048), ("RSA_3072", 3072), ("RSA_4096", 4096))
    for algorithm, hash_len in (("RSAES_OAEP_SHA_256", 32), ("RSAES_OAEP_SHA_1", 20))
    for limit in [bits // 8 - 2 * hash_len - 2]
]


@dataclass(frozen=True)
class AsymKey:
    key_id: str
    version_id: str


@pytest.fixture(scope="module")
def asym_keys(server: LiveServer, suite_instance_id: str) -> dict[tuple[str, str], AsymKey]:
    """One key per (spec, usage), made once per server with a single SDK caller."""
    caller = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = suite_instance_id
    made = {}
    wanted = [(spec, SIGN) for spec in ("RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P256K")]
    wanted += [(spec, ENCRYPT) for spec in ("RSA_2048", "RSA_3072", "RSA_4096")]
    for spec, usage in wanted:
        meta = caller.call("CreateKey", DKMSInstanceId=instance, KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        made[(spec, usage)] = AsymKey(meta["KeyId"], meta["PrimaryKeyVersion"])
    return made


def _public_key(kms: KmsCaller, key: AsymKey) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    answer = kms.call("GetPublicKey", KeyId=key.key_id, KeyVersionId=key.version_id)
    assert (answer["KeyId"], answer["KeyVersionId"]) == (key.key_id, key.version_id)
    assert answer["PublicKey"].startswith("-----BEGIN PUBLIC KEY-----\n")
    loaded = serialization.load_pem_public_key(answer["PublicKey"].encode())
    assert isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return loaded


def _verify_locally(public_key: object, algorithm: str, digest: bytes, signature: bytes) -> None:
    prehashed = Prehashed(hashes.SHA256())
    if algorithm == "ECDSA_SHA_256":
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, digest, ec.ECDSA(prehashed))
        return
    assert isinstance(public_key, rsa.RSAPublicKey)
    if algorithm == "RSA_PSS_SHA_256":
        scheme: padding.AsymmetricPadding = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        scheme = padding.PKCS1v15()
    public_key.verify(signature, digest, scheme, prehashed)


def _on(key: AsymKey) -> dict[str, str]:
    return {"KeyId": key.key_id, "KeyVersionId": key.version_id}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _refused(kms: KmsCaller, action: str, code: str, status: int = 400, **params: object) -> KmsError:
    with pytest.raises(KmsError) as caught:
        kms.call(action, **params)
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    return caught.value


# -- CreateKey ------------------------------------------------------------------------------------
def test_create_asymmetric_keys_reports_spec_usage_and_default_usage(
    kms: KmsCaller, instance_id: str
) -> None:
    ec_key = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="EC_P256K")["KeyMetadata"]
    assert (ec_key["KeySpec"], ec_key["KeyUsage"], ec_key["KeyState"]) == ("EC_P256K", SIGN, "Enabled")
    rsa_key = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="RSA_2048")["KeyMetadata"]
    assert (rsa_key["KeySpec"], rsa_key["KeyUsage"]) == (
        "RSA_2048",
        SIGN,
    )  # Alibaba's default for keys that sign
    described = kms.call("DescribeKey", KeyId=rsa_key["KeyId"])["KeyMetadata"]
    assert described["PrimaryKeyVersion"] == rsa_key["PrimaryKeyVersion"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"KeySpec": "EC_P256", "KeyUsage": ENCRYPT}, "InvalidParameter"),
        ({"KeySpec": "EC_P256K", "KeyUsage": ENCRYPT}, "InvalidParameter"),
        ({"KeySpec": "RSA_1024"}, "InvalidParameter"),
        ({"KeySpec": "EC_SM2"}, "InvalidParameter"),
        (
            {"KeySpec": "RSA_2048", "EnableAutomaticRotation": True, "RotationInterval": "30d"},
            "UnsupportedOperation",
        ),
        ({"KeySpec": "EC_P256", "RotationInterval": "30d"}, "UnsupportedOperation"),
    ],
)
def test_invalid_asymmetric_create_key_is_refused_and_creates_nothing(
    kms: KmsCaller, instance_id: str, params: dict[str, object], code: str
) -> None:
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    _refused(kms, "CreateKey", code, DKMSInstanceId=instance_id, **params)
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before


def test_default_keys_stay_symmetric(kms: KmsCaller) -> None:
    before = kms.call("ListKeys", PageSize=1)["TotalCount"]
    _refused(kms, "CreateKey", "InvalidParameter", KeySpec="RSA_2048")
    assert kms.call("ListKeys", PageSize=1)["TotalCount"] == before


# -- Sign / Verify --------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "algorithm"), SIGNING_CASES)
def test_sign_verifies_locally_and_verify_answers_true_and_false(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], spec: str, algorithm: str
) -> None:
    key = asym_keys[(spec, SIGN)]
    digest = hashlib.sha256(f"message for {spec} {algorithm} {kms.mode}".encode()).digest()
    signed = kms.call(
        "AsymmetricSign",
        KeyId=key.key_id,
        KeyVersionId=key.version_id,
        Algorithm=algorithm,
        Digest=_b64(digest),
    )
    assert (signed["KeyId"], signed["KeyVersionId"]) == (key.key_id, key.version_id)
    signature = base64.b64decode(signed["Value"])
    _verify_locally(_public_key(kms, key), algorithm, digest, signature)

    def verify(value: bytes, over: bytes = digest) -> bool:
        answer = kms.call(
            "AsymmetricVerify",
            KeyId=key.key_id,
            KeyVersionId=key.version_id,
            Algorithm=algorithm,
            Digest=_b64(over),
            Value=_b64(value),
        )
        assert (answer["KeyId"], answer["KeyVersionId"]) == (key.key_id, key.version_id)
        return bool(answer["Value"])

    assert verify(signature) is True
    assert verify(signature[:-1] + bytes([signature[-1] ^ 1])) is False
    assert verify(signature, hashlib.sha256(b"another message").digest()) is False
    assert verify(b"\x00" * 10) is False


def test_rsa_signature_of_one_padding_does_not_verify_as_the_other(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]
) -> None:
    key = asym_keys[("RSA_2048", SIGN)]
    digest = _b64(hashlib.sha256(b"padding").digest())
    common = {"KeyId": key.key_id, "KeyVersionId": key.version_id, "Digest": digest}
    pkcs1 = kms.call("AsymmetricSign", Algorithm="RSA_PKCS1_SHA_256", **common)["Value"]
    assert kms.call("AsymmetricVerify", Algorithm="RSA_PSS_SHA_256", Value=pkcs1, **common)["Value"] is False
    assert kms.call("AsymmetricVerify", Algorithm="RSA_PKCS1_SHA_256", Value=pkcs1, **common)["Value"] is True


def test_key_is_usable_by_arn(kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]) -> None:
    key = asym_keys[("EC_P256", SIGN)]
    arn = kms.call("DescribeKey", KeyId=key.key_id)["KeyMetadata"]["Arn"]
    digest = hashlib.sha256(b"by arn").digest()
    signed = kms.call(
        "AsymmetricSign",
        KeyId=arn,
        KeyVersionId=key.version_id,
        Algorithm="ECDSA_SHA_256",
        Digest=_b64(digest),
    )
    assert signed["KeyId"] == key.key_id
    _verify_locally(_public_key(kms, key), "ECDSA_SHA_256", digest, base64.b64decode(signed["Value"]))


@pytest.mark.parametrize("length", [0, 20, 31, 33, 48, 64])
def test_digest_must_be_32_bytes(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], length: int
) -> None:
    key = asym_keys[("EC_P256", SIGN)]
    common = {"KeyId": key.key_id, "KeyVersionId": key.version_id, "Algorithm": "ECDSA_SHA_256"}
    digest = _b64(b"\x01" * length) if length else None
    code = "InvalidParameter" if length else "MissingDigest"
    _refused(kms, "AsymmetricSign", code, Digest=digest, **common)
    _refused(kms, "AsymmetricVerify", code, Digest=digest, Value=_b64(b"\x30\x00"), **common)


def test_malformed_base64_is_refused(kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]) -> None:
    key = asym_keys[("EC_P256", SIGN)]
    common = {"KeyId": key.key_id, "KeyVersionId": key.version_id, "Algorithm": "ECDSA_SHA_256"}
    _refused(kms, "AsymmetricSign", "InvalidParameter", Digest="not base64!", **common)
    good = _b64(hashlib.sha256(b"x").digest())
    _refused(kms, "AsymmetricVerify", "InvalidParameter", Digest=good, Value="%%%", **common)


# -- Encrypt / Decrypt ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "algorithm", "limit"), ENCRYPTION_CASES)
def test_local_encryption_decrypts_and_limits_are_honest(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], spec: str, algorithm: str, limit: int
) -> None:
    key = asym_keys[(spec, ENCRYPT)]
    public_key = _public_key(kms, key)
    assert isinstance(public_key, rsa.RSAPublicKey)
    hash_type = hashes.SHA256 if algorithm.endswith("256") else hashes.SHA1
    oaep = padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)
    common = {"KeyId": key.key_id, "KeyVersionId": key.version_id, "Algorithm": algorithm}
    plaintext = bytes(range(256)) * 2
    plaintext = plaintext[:limit]
    local = public_key.encrypt(plaintext, oaep)
    opened = kms.call("AsymmetricDecrypt", CiphertextBlob=_b64(local), **common)
    assert base64.b64decode(opened["Plaintext"]) == plaintext
    assert (opened["KeyId"], opened["KeyVersionId"]) == (key.key_id, key.version_id)
    sealed = kms.call("AsymmetricEncrypt", Plaintext=_b64(b"\x00small"), **common)
    assert len(base64.b64decode(sealed["CiphertextBlob"])) == public_key.key_size // 8
    round_trip = kms.call("AsymmetricDecrypt", CiphertextBlob=sealed["CiphertextBlob"], **common)
    assert base64.b64decode(round_trip["Plaintext"]) == b"\x00small"
    error = _refused(
        kms, "AsymmetricEncrypt", "InvalidParameter", Plaintext=_b64(b"x" * (limit + 1)), **common
    )
    assert str(limit) in error.message


def test_oaep_hash_is_bound_and_tampered_ciphertext_is_refused(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]
) -> None:
    key = asym_keys[("RSA_2048", ENCRYPT)]
    common = {"KeyId": key.key_id, "KeyVersionId": key.version_id}
    blob = kms.call("AsymmetricEncrypt", Algorithm="RSAES_OAEP_SHA_256", Plaintext=_b64(b"hello"), **common)[
        "CiphertextBlob"
    ]
    _refused(
        kms,
        "AsymmetricDecrypt",
        "Rejected.InvalidCiphertext",
        Algorithm="RSAES_OAEP_SHA_1",
        CiphertextBlob=blob,
        **common,
    )
    raw = base64.b64decode(blob)
    for bad in (raw[:-1] + bytes([raw[-1] ^ 1]), raw[:-1], raw + b"\x00", b"\x00" * len(raw)):
        _refused(
            kms,
            "AsymmetricDecrypt",
            "Rejected.InvalidCiphertext",
            Algorithm="RSAES_OAEP_SHA_256",
            CiphertextBlob=_b64(bad),
            **common,
        )


# -- refusals: usage, algorithm, symmetric vs asymmetric, versions, state --------------------------
def test_wrong_usage_wrong_algorithm_and_wrong_kind_are_refused(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], key_id: str
) -> None:
    signer = asym_keys[("RSA_2048", SIGN)]
    decrypter = asym_keys[("RSA_2048", ENCRYPT)]
    ec_key = asym_keys[("EC_P256", SIGN)]
    digest = _b64(hashlib.sha256(b"d").digest())
    # Wrong usage: an ENCRYPT/DECRYPT key does not sign, a SIGN/VERIFY key does not decrypt.
    _refused(
        kms,
        "AsymmetricSign",
        "UnsupportedOperation",
        Algorithm="RSA_PSS_SHA_256",
        Digest=digest,
        **_on(decrypter),
    )
    _refused(
        kms,
        "AsymmetricEncrypt",
        "UnsupportedOperation",
        Algorithm="RSAES_OAEP_SHA_256",
        Plaintext="AA==",
        **_on(signer),
    )
    _refused(
        kms,
        "AsymmetricDecrypt",
        "UnsupportedOperation",
        Algorithm="RSAES_OAEP_SHA_256",
        CiphertextBlob=_b64(b"\x00" * 256),
        **_on(signer),
    )
    # Wrong algorithm for the spec.
    _refused(
        kms, "AsymmetricSign", "InvalidParameter", Algorithm="ECDSA_SHA_256", Digest=digest, **_on(signer)
    )
    _refused(
        kms, "AsymmetricSign", "InvalidParameter", Algorithm="RSA_PSS_SHA_256", Digest=digest, **_on(ec_key)
    )
    _refused(kms, "AsymmetricSign", "InvalidParameter", Algorithm="SM2DSA", Digest=digest, **_on(ec_key))
    _refused(
        kms,
        "AsymmetricDecrypt",
        "InvalidParameter",
        Algorithm="RSAES_PKCS1_V1_5",
        CiphertextBlob="AA==",
        **_on(decrypter),
    )
    # Symmetric-only calls on an asymmetric key.
    _refused(kms, "Encrypt", "UnsupportedOperation", KeyId=decrypter.key_id, Plaintext="x")
    _refused(kms, "GenerateDataKey", "UnsupportedOperation", KeyId=decrypter.key_id)
    _refused(kms, "GenerateDataKeyWithoutPlaintext", "UnsupportedOperation", KeyId=signer.key_id)
    # Asymmetric calls on a symmetric key.
    version = kms.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["PrimaryKeyVersion"]
    symmetric = {"KeyId": key_id, "KeyVersionId": version}
    _refused(kms, "GetPublicKey", "UnsupportedOperation", **symmetric)
    _refused(
        kms, "AsymmetricSign", "UnsupportedOperation", Algorithm="RSA_PSS_SHA_256", Digest=digest, **symmetric
    )
    _refused(
        kms,
        "AsymmetricEncrypt",
        "UnsupportedOperation",
        Algorithm="RSAES_OAEP_SHA_256",
        Plaintext="AA==",
        **symmetric,
    )


def test_versions_must_belong_to_the_key(kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]) -> None:
    key = asym_keys[("EC_P256", SIGN)]
    other = asym_keys[("EC_P256K", SIGN)]
    _refused(
        kms,
        "GetPublicKey",
        "Forbidden.KeyVersionNotFound",
        404,
        KeyId=key.key_id,
        KeyVersionId=other.version_id,
    )
    _refused(
        kms,
        "GetPublicKey",
        "Forbidden.KeyVersionNotFound",
        404,
        KeyId=key.key_id,
        KeyVersionId="00000000-0000-4000-8000-000000000000",
    )
    _refused(kms, "GetPublicKey", "MissingKeyVersionId", KeyId=key.key_id)
    _refused(
        kms,
        "GetPublicKey",
        "Forbidden.KeyNotFound",
        404,
        KeyId="key-hzznothere0000",
        KeyVersionId=key.version_id,
    )


def test_disabled_asymmetric_key_refuses_everything_until_enabled(kms: KmsCaller, instance_id: str) -> None:
    meta = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="EC_P256")["KeyMetadata"]
    key = {"KeyId": meta["KeyId"], "KeyVersionId": meta["PrimaryKeyVersion"]}
    digest = _b64(hashlib.sha256(b"before").digest())
    signature = kms.call("AsymmetricSign", Algorithm="ECDSA_SHA_256", Digest=digest, **key)["Value"]
    kms.call("DisableKey", KeyId=meta["KeyId"])
    _refused(kms, "AsymmetricSign", "Rejected.Disabled", Algorithm="ECDSA_SHA_256", Digest=digest, **key)
    _refused(
        kms,
        "AsymmetricVerify",
        "Rejected.Disabled",
        Algorithm="ECDSA_SHA_256",
        Digest=digest,
        Value=signature,
        **key,
    )
    _refused(kms, "GetPublicKey", "Rejected.Disabled", **key)
    kms.call("EnableKey", KeyId=meta["KeyId"])
    answer = kms.call("AsymmetricVerify", Algorithm="ECDSA_SHA_256", Digest=digest, Value=signature, **key)
    assert answer["Value"] is True


def test_public_key_matches_the_spec(kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey]) -> None:
    for (spec, _usage), key in asym_keys.items():
        public_key = _public_key(kms, key)
        if spec.startswith("RSA_"):
            assert isinstance(public_key, rsa.RSAPublicKey)
            assert public_key.key_size == int(spec[4:])
            assert public_key.public_numbers().e == 65537
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            expected = ec.SECP256R1 if spec == "EC_P256" else ec.SECP256K1
            assert isinstance(public_key.curve, expected)


def test_blobs_never_name_key_pairs_and_re_encrypt_refuses_an_asymmetric_destination(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], key_id: str
) -> None:
    decrypter = asym_keys[("RSA_2048", ENCRYPT)]
    forged = Ciphertext(KeyVersionId(decrypter.version_id), b"\x00" * 12, b"\x00" * 32).to_bytes()
    _refused(kms, "Decrypt", "Rejected.InvalidCiphertext", CiphertextBlob=_b64(forged))
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext="stay")["CiphertextBlob"]
    _refused(kms, "ReEncrypt", "UnsupportedOperation", CiphertextBlob=blob, DestinationKeyId=decrypter.key_id)
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "stay"


def test_create_key_version_makes_a_new_key_pair_and_old_versions_keep_verifying(
    kms: KmsCaller, instance_id: str
) -> None:
    created = kms.call("CreateKey", DKMSInstanceId=instance_id, KeySpec="EC_P256")["KeyMetadata"]
    first = AsymKey(created["KeyId"], created["PrimaryKeyVersion"])
    digest = hashlib.sha256(b"signed before the rotation").digest()
    old_signature = base64.b64decode(
        kms.call("AsymmetricSign", **_on(first), Algorithm="ECDSA_SHA_256", Digest=_b64(digest))["Value"]
    )
    new_version = kms.call("CreateKeyVersion", KeyId=first.key_id)["KeyVersion"]["KeyVersionId"]
    assert new_version != first.version_id
    second = AsymKey(first.key_id, new_version)
    assert kms.call("DescribeKey", KeyId=first.key_id)["KeyMetadata"]["PrimaryKeyVersion"] == new_version
    old_public, new_public = _public_key(kms, first), _public_key(kms, second)
    assert old_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != new_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    _verify_locally(old_public, "ECDSA_SHA_256", digest, old_signature)
    verified = kms.call("AsymmetricVerify", **_on(first), Algorithm="ECDSA_SHA_256", Digest=_b64(digest),
                        Value=_b64(old_signature))  # fmt: skip
    assert verified["Value"] is True
    new_signature = base64.b64decode(
        kms.call("AsymmetricSign", **_on(second), Algorithm="ECDSA_SHA_256", Digest=_b64(digest))["Value"]
    )
    _verify_locally(new_public, "ECDSA_SHA_256", digest, new_signature)
    # Automatic rotation stays refused for key pairs (F3.4).
    refused = _refused(kms, "UpdateRotationPolicy", "UnsupportedOperation", KeyId=first.key_id,
                       EnableAutomaticRotation=True, RotationInterval="30d")  # fmt: skip
    assert refused.status == 400


def test_re_encrypt_from_an_asymmetric_source(
    kms: KmsCaller, asym_keys: dict[tuple[str, str], AsymKey], instance_id: str
) -> None:
    """ReEncrypt takes an AsymmetricEncrypt result (SourceKeyId, SourceKeyVersionId,
    SourceEncryptionAlgorithm) and seals its plaintext under a symmetric destination key."""
    source = asym_keys[("RSA_2048", ENCRYPT)]
    destination = kms.call("CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"]
    secret = b"moved from a key pair"
    made = kms.call("AsymmetricEncrypt", **_on(source), Algorithm="RSAES_OAEP_SHA_1", Plaintext=_b64(secret))
    from_pair = {
        "CiphertextBlob": made["CiphertextBlob"],
        "SourceKeyId": source.key_id,
        "SourceKeyVersionId": source.version_id,
        # SHA-1 OAEP: the suite runs on SoftHSM2 too (tests/keystores), which has no other.
        "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
        "DestinationKeyId": destination,
    }
    moved = kms.call("ReEncrypt", **from_pair, DestinationEncryptionContext={"to": "aes"})
    assert moved["KeyId"] == destination and moved["KeyVersionId"]
    opened = kms.call("Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"to": "aes"})
    assert opened["Plaintext"] == _b64(secret)  # the Plaintext AsymmetricEncrypt was given
    # A dry run checks both keys and decrypts nothing.
    _refused(kms, "ReEncrypt", "DryRunOperation", **from_pair, DryRun=True)
    # Its parts go together; a symmetric source takes neither of them.
    _refused(kms, "ReEncrypt", "MissingSourceKeyVersionId", **{**from_pair, "SourceKeyVersionId": None})
    _refused(
        kms,
        "ReEncrypt",
        "MissingSourceEncryptionAlgorithm",
        **{**from_pair, "SourceEncryptionAlgorithm": None},
    )
    _refused(
        kms, "ReEncrypt", "InvalidParameter", **{**from_pair, "SourceKeyId": None}
    )  # SourceKeyVersionId without SourceKeyId
    _refused(kms, "ReEncrypt", "InvalidParameter", **from_pair, SourceEncryptionContext={"a": "b"})
    # A tampered ciphertext does not open; a signing key cannot be the source; the destination must
    # be symmetric.
    tampered = bytearray(base64.b64decode(made["CiphertextBlob"]))
    tampered[-1] ^= 1
    _refused(
        kms,
        "ReEncrypt",
        "Rejected.InvalidCiphertext",
        **{**from_pair, "CiphertextBlob": _b64(bytes(tampered))},
    )
    signing = asym_keys[("RSA_2048", SIGN)]
    _refused(
        kms,
        "ReEncrypt",
        "UnsupportedOperation",
        **{**from_pair, "SourceKeyId": signing.key_id, "SourceKeyVersionId": signing.version_id},
    )
    _refused(kms, "ReEncrypt", "UnsupportedOperation", **{**from_pair, "DestinationKeyId": source.key_id})
