"""SoftwareProvider key pairs: generation per spec, private keys wrapped by the keystore and bound to
their version, the key-object cache and the seal, and refusals of mismatched material."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from openkms.errors import (
    InvalidArgument,
    InvalidCiphertext,
    Sealed,
    SignatureInvalid,
    StorageIntegrityError,
    UnsupportedOperation,
)
from openkms.keystore import Keystore
from openkms.providers import keypairs
from openkms.providers.base import MaterialRef, NewVersion
from openkms.providers.software import SoftwareProvider
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyVersionId

KEY = KeyId("key-0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21")
DIGEST = hashlib.sha256(b"provider test").digest()


@pytest.fixture
def keystore() -> Keystore:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    return keystore


@pytest.fixture
def provider(keystore: Keystore) -> SoftwareProvider:
    return SoftwareProvider(keystore)


def _pair(provider: SoftwareProvider, spec: KeySpec, key_id: KeyId = KEY) -> MaterialRef:
    version = KeyVersionId(str(uuid.uuid4()))
    return MaterialRef(key_id, version, spec, provider.generate_key_pair(NewVersion(key_id, version, spec)))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (KeySpec.RSA_2048, 2048),
        (KeySpec.RSA_3072, 3072),
        (KeySpec.EC_P256, ec.SECP256R1),
        (KeySpec.EC_P256K, ec.SECP256K1),
    ],
)
def test_generated_pair_matches_its_spec_and_signs(
    provider: SoftwareProvider, spec: KeySpec, expected: object
) -> None:
    ref = _pair(provider, spec)
    public_key = serialization.load_pem_public_key(provider.public_key_pem(ref).encode())
    algorithm = (
        AsymmetricAlgorithm.ECDSA_SHA_256 if spec.startswith("EC") else AsymmetricAlgorithm.RSA_PSS_SHA_256
    )
    signature = provider.sign(ref, algorithm, DIGEST)
    provider.verify(ref, algorithm, DIGEST, signature)
    if isinstance(public_key, rsa.RSAPublicKey):
        assert public_key.key_size == expected
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert isinstance(public_key.curve, expected)  # type: ignore[arg-type]


def test_wrapped_private_key_is_not_the_plain_key(provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.EC_P256)
    # The stored row must not contain the PKCS#8 structure or the public point in the clear.
    public_der = serialization.load_pem_public_key(provider.public_key_pem(ref).encode()).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert public_der[1:17] not in ref.wrapped
    assert b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" not in ref.wrapped  # id-ecPublicKey OID


def test_moved_or_respecced_material_does_not_load(keystore: Keystore, provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.EC_P256)
    other_version = KeyVersionId(str(uuid.uuid4()))
    for moved in (
        MaterialRef(KEY, other_version, ref.spec, ref.wrapped),
        MaterialRef(KeyId("key-other"), ref.version_id, ref.spec, ref.wrapped),
        MaterialRef(KEY, ref.version_id, KeySpec.EC_P256K, ref.wrapped),
    ):
        fresh = SoftwareProvider(provider._keystore)
        with pytest.raises(StorageIntegrityError):
            fresh.public_key_pem(moved)


def test_material_of_the_wrong_kind_is_an_integrity_error(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore)
    version = KeyVersionId(str(uuid.uuid4()))
    ec_der = keypairs.private_key_der(ec.generate_private_key(ec.SECP256K1()))
    # Wrapped under the right ids but holding a secp256k1 key where P-256 is claimed.
    wrapped = keystore.wrap(KEY, version, KeySpec.EC_P256, ec_der)
    with pytest.raises(StorageIntegrityError):
        provider.public_key_pem(MaterialRef(KEY, version, KeySpec.EC_P256, wrapped))


def test_key_objects_are_cached_and_dropped_on_seal(keystore: Keystore, provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.EC_P256)
    provider.sign(ref, AsymmetricAlgorithm.ECDSA_SHA_256, DIGEST)
    assert ref.version_id in provider._pairs
    provider.forget(ref.version_id)
    assert ref.version_id not in provider._pairs
    provider.sign(ref, AsymmetricAlgorithm.ECDSA_SHA_256, DIGEST)
    keystore.seal()
    assert not provider._pairs
    with pytest.raises(Sealed):
        provider.sign(ref, AsymmetricAlgorithm.ECDSA_SHA_256, DIGEST)
    with pytest.raises(Sealed):
        provider.public_key_pem(ref)


def test_verify_raises_and_digest_length_is_checked(provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.RSA_2048)
    signature = provider.sign(ref, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, DIGEST)
    with pytest.raises(SignatureInvalid):
        provider.verify(ref, AsymmetricAlgorithm.RSA_PSS_SHA_256, DIGEST, signature)
    with pytest.raises(SignatureInvalid):
        provider.verify(ref, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, hashlib.sha256(b"x").digest(), signature)
    for bad in (DIGEST[:-1], DIGEST + b"\x00", b""):
        with pytest.raises(InvalidArgument):
            provider.sign(ref, AsymmetricAlgorithm.RSA_PKCS1_SHA_256, bad)


def test_rsa_pss_salt_is_32_bytes(provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.RSA_2048)
    public_key = serialization.load_pem_public_key(provider.public_key_pem(ref).encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    signature = provider.sign(ref, AsymmetricAlgorithm.RSA_PSS_SHA_256, DIGEST)
    public_key.verify(
        signature, DIGEST, padding.PSS(padding.MGF1(hashes.SHA256()), 32), Prehashed(hashes.SHA256())
    )
    with pytest.raises(Exception):
        public_key.verify(
            signature, DIGEST, padding.PSS(padding.MGF1(hashes.SHA256()), 20), Prehashed(hashes.SHA256())
        )


def test_oaep_round_trip_and_refusals(provider: SoftwareProvider) -> None:
    ref = _pair(provider, KeySpec.RSA_2048)
    for algorithm in (AsymmetricAlgorithm.RSAES_OAEP_SHA_256, AsymmetricAlgorithm.RSAES_OAEP_SHA_1):
        ciphertext = provider.asymmetric_encrypt(ref, algorithm, b"secret")
        assert provider.asymmetric_decrypt(ref, algorithm, ciphertext).reveal() == b"secret"
        for bad in (ciphertext[:-1], ciphertext + b"\x00", bytes(256), b""):
            with pytest.raises(InvalidCiphertext):
                provider.asymmetric_decrypt(ref, algorithm, bad)
    with pytest.raises(UnsupportedOperation):
        provider.asymmetric_encrypt(
            _pair(provider, KeySpec.EC_P256), AsymmetricAlgorithm.RSAES_OAEP_SHA_256, b"x"
        )
    with pytest.raises(UnsupportedOperation):
        provider.sign(ref, AsymmetricAlgorithm.ECDSA_SHA_256, DIGEST)


def test_symmetric_paths_refuse_key_pairs_and_the_reverse(provider: SoftwareProvider) -> None:
    pair = _pair(provider, KeySpec.EC_P256)
    with pytest.raises(UnsupportedOperation):
        provider.encrypt(pair, b"x", b"")
    with pytest.raises(UnsupportedOperation):
        provider.generate_key_pair(NewVersion(KEY, KeyVersionId(str(uuid.uuid4())), KeySpec.ALIYUN_AES_256))
    with pytest.raises(UnsupportedOperation):
        provider.generate_symmetric(NewVersion(KEY, KeyVersionId(str(uuid.uuid4())), KeySpec.RSA_2048))
    version = KeyVersionId(str(uuid.uuid4()))
    aes = MaterialRef(
        KEY,
        version,
        KeySpec.ALIYUN_AES_256,
        provider.generate_symmetric(NewVersion(KEY, version, KeySpec.ALIYUN_AES_256)),
    )
    with pytest.raises(StorageIntegrityError):
        provider.public_key_pem(aes)
