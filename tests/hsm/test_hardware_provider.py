"""The hardware provider on a real SoftHSM2 token: every spec and algorithm, usages, destruction,
import unwrapped in the token, what the token refuses, and the token's failures."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, ObjectClass

from openkms.domain.key_import import WrappingAlgorithm
from openkms.errors import (
    IncorrectKeyMaterial,
    InvalidArgument,
    InvalidCiphertext,
    KeyMaterialLost,
    KeyStoreUnavailable,
    SignatureInvalid,
    UnsupportedOperation,
)
from openkms.hsm.config import TokenConfig
from openkms.hsm.sessions import TokenSessions
from openkms.providers.base import ImportRequest, MaterialRef, NewVersion
from openkms.providers.hardware import HardwareProvider, parse_reference
from openkms.secret import SecretBytes
from openkms.testing.softhsm import SoftHsmToken
from openkms.types import AsymmetricAlgorithm, KeyId, KeySpec, KeyUsage, KeyVersionId
from tests.support.byok import envelope, pkcs8

A = AsymmetricAlgorithm
SIGN, ENCRYPT = KeyUsage.SIGN_VERIFY, KeyUsage.ENCRYPT_DECRYPT
FINGERPRINT_KEY = SecretBytes(os.urandom(32))


def _made(provider: HardwareProvider, spec: KeySpec, *usages: KeyUsage) -> MaterialRef:
    key_id, version_id = KeyId(f"key-{uuid.uuid4().hex[:8]}"), KeyVersionId(str(uuid.uuid4()))
    new = NewVersion(key_id, version_id, spec, usages)
    stored = (
        provider.generate_symmetric(new)
        if spec.value.startswith("Aliyun")
        else provider.generate_key_pair(new)
    )
    return MaterialRef(key_id, version_id, spec, stored)


@pytest.mark.parametrize("spec", [KeySpec.ALIYUN_AES_128, KeySpec.ALIYUN_AES_192, KeySpec.ALIYUN_AES_256])
def test_aes_gcm_in_the_token_round_trips_and_refuses_tampering(
    hardware: HardwareProvider, spec: KeySpec
) -> None:
    ref = _made(hardware, spec)
    iv, sealed = hardware.encrypt(ref, b"attack at dawn", b"aad")
    assert len(iv) == 12 and len(sealed) == len(b"attack at dawn") + 16
    assert hardware.decrypt(ref, iv, sealed, b"aad").reveal() == b"attack at dawn"
    for bad_iv, bad_sealed, bad_aad in (
        (iv, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"aad"),
        (iv, sealed, b"other"),
        (bytes(12), sealed, b"aad"),
        (iv[:8], sealed, b"aad"),
        (iv, sealed[:15], b"aad"),
    ):
        with pytest.raises(InvalidCiphertext):
            hardware.decrypt(ref, bad_iv, bad_sealed, bad_aad)


def test_the_token_keeps_the_material_sensitive_and_unextractable(
    hardware: HardwareProvider, softhsm: SoftHsmToken
) -> None:
    aes = _made(hardware, KeySpec.ALIYUN_AES_256)
    pair = _made(hardware, KeySpec.RSA_2048, SIGN)
    session = softhsm.session()
    try:
        for ref, object_class in ((aes, ObjectClass.SECRET_KEY), (pair, ObjectClass.PRIVATE_KEY)):
            found = session.get_key(object_class=object_class, id=parse_reference(ref.wrapped)[1])
            assert found[Attribute.SENSITIVE] and not found[Attribute.EXTRACTABLE] and found[Attribute.TOKEN]
            assert found[Attribute.LABEL] == f"openkms/{ref.key_id}/{ref.version_id}"
    finally:
        session.close()
    assert len(aes.wrapped) == 21 and b"openkms" not in aes.wrapped  # only a reference is stored


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        (KeySpec.RSA_2048, A.RSA_PSS_SHA_256),
        (KeySpec.RSA_2048, A.RSA_PKCS1_SHA_256),
        (KeySpec.RSA_3072, A.RSA_PSS_SHA_256),
        (KeySpec.EC_P256, A.ECDSA_SHA_256),
        (KeySpec.EC_P256K, A.ECDSA_SHA_256),
    ],
)
def test_token_signatures_verify_with_pyca(hardware: HardwareProvider, spec: KeySpec, algorithm: A) -> None:
    ref = _made(hardware, spec, SIGN)
    digest = hashlib.sha256(b"message").digest()
    signature = hardware.sign(ref, algorithm, digest)
    public = serialization.load_pem_public_key(hardware.public_key_pem(ref).encode())
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(public, rsa.RSAPublicKey):
        scheme = (
            padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            if algorithm is A.RSA_PSS_SHA_256
            else padding.PKCS1v15()
        )
        public.verify(signature, digest, scheme, prehashed)
        assert public.key_size == int(spec.value.split("_")[1])
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, digest, ec.ECDSA(prehashed))  # DER, as pyca makes them
        assert public.curve.name == ("secp256r1" if spec is KeySpec.EC_P256 else "secp256k1")
    hardware.verify(ref, algorithm, digest, signature)
    with pytest.raises(SignatureInvalid):
        hardware.verify(ref, algorithm, hashlib.sha256(b"other").digest(), signature)
    with pytest.raises(InvalidArgument):
        hardware.sign(ref, algorithm, digest[:31])


def test_one_rsa_pair_with_both_usages_signs_and_decrypts(hardware: HardwareProvider) -> None:
    both = _made(hardware, KeySpec.RSA_2048, SIGN, ENCRYPT)
    hardware.sign(both, A.RSA_PSS_SHA_256, bytes(32))
    ciphertext = hardware.asymmetric_encrypt(both, A.RSAES_OAEP_SHA_1, b"secret")
    assert hardware.decrypt is not None
    assert hardware.asymmetric_decrypt(both, A.RSAES_OAEP_SHA_1, ciphertext).reveal() == b"secret"
    sign_only = _made(hardware, KeySpec.RSA_2048, SIGN)
    with pytest.raises(UnsupportedOperation, match="refused to decrypt"):
        hardware.asymmetric_decrypt(sign_only, A.RSAES_OAEP_SHA_1, ciphertext)
    decrypt_only = _made(hardware, KeySpec.RSA_2048, ENCRYPT)
    with pytest.raises(UnsupportedOperation, match="refused to sign"):
        hardware.sign(decrypt_only, A.RSA_PSS_SHA_256, bytes(32))
    with pytest.raises(UnsupportedOperation):
        _made(hardware, KeySpec.EC_P256, SIGN, ENCRYPT)


def test_oaep_decryption_in_the_token_and_what_softhsm_lacks(hardware: HardwareProvider) -> None:
    ref = _made(hardware, KeySpec.RSA_2048, ENCRYPT)
    public = serialization.load_pem_public_key(hardware.public_key_pem(ref).encode())
    assert isinstance(public, rsa.RSAPublicKey)
    sha1 = public.encrypt(b"plain", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    assert hardware.asymmetric_decrypt(ref, A.RSAES_OAEP_SHA_1, sha1).reveal() == b"plain"
    with pytest.raises(InvalidCiphertext):
        hardware.asymmetric_decrypt(ref, A.RSAES_OAEP_SHA_1, sha1[:-1] + bytes([sha1[-1] ^ 1]))
    with pytest.raises(InvalidCiphertext):
        hardware.asymmetric_decrypt(ref, A.RSAES_OAEP_SHA_1, sha1[:-1])
    # SoftHSM2 2.6 has RSAES-OAEP with SHA-1 only: the answer says so, and nothing falls back to software.
    sha256 = public.encrypt(b"plain", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    with pytest.raises(UnsupportedOperation, match="cannot decrypt RSAES_OAEP_SHA_256"):
        hardware.asymmetric_decrypt(ref, A.RSAES_OAEP_SHA_256, sha256)


def test_destroyed_material_is_reported_lost_and_destroy_is_idempotent(
    hardware: HardwareProvider, softhsm: SoftHsmToken
) -> None:
    aes = _made(hardware, KeySpec.ALIYUN_AES_256)
    pair = _made(hardware, KeySpec.EC_P256, SIGN)
    iv, sealed = hardware.encrypt(aes, b"x", b"")  # cached in a session: destroy must still win
    for ref in (aes, pair):
        object_id = parse_reference(ref.wrapped)[1]
        assert object_id in softhsm.object_ids()
        hardware.destroy(ref)
        hardware.destroy(ref)
        assert object_id not in softhsm.object_ids()
    with pytest.raises(KeyMaterialLost):
        hardware.decrypt(aes, iv, sealed, b"")
    with pytest.raises(KeyMaterialLost):
        hardware.sign(pair, A.ECDSA_SHA_256, bytes(32))


def _import_request(
    hardware: HardwareProvider,
    material: bytes,
    algorithm: WrappingAlgorithm,
    spec: KeySpec = KeySpec.ALIYUN_AES_256,
) -> ImportRequest:
    key_id, token_id = KeyId(f"key-{uuid.uuid4().hex[:8]}"), str(uuid.uuid4())
    public_der, stored = hardware.new_import_wrapping_key(key_id, token_id)
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    hash_type = hashes.SHA256 if algorithm is WrappingAlgorithm.RSAES_OAEP_SHA_256 else hashes.SHA1
    encrypted = public.encrypt(material, padding.OAEP(padding.MGF1(hash_type()), hash_type(), None))
    return ImportRequest(
        key_id, KeyVersionId(str(uuid.uuid4())), spec, token_id, algorithm, stored, encrypted
    )


def test_imported_material_is_unwrapped_in_the_token(
    hardware: HardwareProvider, softhsm: SoftHsmToken
) -> None:
    material = os.urandom(32)
    request = _import_request(hardware, material, WrappingAlgorithm.RSAES_OAEP_SHA_1)
    stored, fingerprint = hardware.import_material(request, FINGERPRINT_KEY, None)
    ref = MaterialRef(request.key_id, request.version_id, request.spec, stored)
    iv, sealed = hardware.encrypt(ref, b"imported", b"")
    # The token's key is the caller's material: an outside AES-GCM with it opens the token's blob.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert AESGCM(material).decrypt(iv, sealed, b"") == b"imported"
    # Importing the same material again matches the fingerprint; other material does not.
    again = _import_request(hardware, material, WrappingAlgorithm.RSAES_OAEP_SHA_1)
    again = ImportRequest(
        request.key_id,
        again.version_id,
        again.spec,
        again.token_id,
        again.algorithm,
        again.wrapped_wrapping_key,
        again.encrypted_material,
    )
    assert hardware.import_material(again, FINGERPRINT_KEY, fingerprint)[1] == fingerprint
    before = softhsm.object_ids()
    other = _import_request(hardware, os.urandom(32), WrappingAlgorithm.RSAES_OAEP_SHA_1)
    other = ImportRequest(
        request.key_id,
        other.version_id,
        other.spec,
        other.token_id,
        other.algorithm,
        other.wrapped_wrapping_key,
        other.encrypted_material,
    )
    wrapping_ids = softhsm.object_ids() - before
    with pytest.raises(IncorrectKeyMaterial):
        hardware.import_material(other, FINGERPRINT_KEY, fingerprint)
    assert softhsm.object_ids() - before == wrapping_ids  # the half-made key was destroyed
    garbage = _import_request(hardware, os.urandom(32), WrappingAlgorithm.RSAES_OAEP_SHA_1)
    garbage = ImportRequest(
        garbage.key_id,
        garbage.version_id,
        garbage.spec,
        garbage.token_id,
        garbage.algorithm,
        garbage.wrapped_wrapping_key,
        os.urandom(256),
    )
    with pytest.raises(IncorrectKeyMaterial):
        hardware.import_material(garbage, FINGERPRINT_KEY, None)
    # The wrapping key pair goes with its token.
    token_ref = MaterialRef(
        request.key_id, KeyVersionId(request.token_id), KeySpec.RSA_2048, request.wrapped_wrapping_key
    )
    hardware.destroy(token_ref)
    assert parse_reference(request.wrapped_wrapping_key)[1] not in softhsm.object_ids()


def test_imports_the_token_cannot_unwrap_are_refused_clearly(hardware: HardwareProvider) -> None:
    with pytest.raises(UnsupportedOperation, match="RSAES_OAEP_SHA_256"):
        hardware.import_material(
            _import_request(hardware, os.urandom(32), WrappingAlgorithm.RSAES_OAEP_SHA_256),
            FINGERPRINT_KEY,
            None,
        )
    request = _import_request(hardware, os.urandom(32), WrappingAlgorithm.RSAES_OAEP_SHA_1)
    for changed in (
        replace(request, algorithm=WrappingAlgorithm.RSAES_PKCS1_V1_5),
        replace(request, spec=KeySpec.EC_P256),
    ):
        with pytest.raises(UnsupportedOperation):
            hardware.import_material(changed, FINGERPRINT_KEY, None)


def test_the_canary_of_imported_material_is_nowhere_in_this_process(hardware: HardwareProvider) -> None:
    import gc

    canary = os.urandom(32)
    request = _import_request(hardware, canary, WrappingAlgorithm.RSAES_OAEP_SHA_1)
    stored, _ = hardware.import_material(request, FINGERPRINT_KEY, None)
    hardware.encrypt(MaterialRef(request.key_id, request.version_id, request.spec, stored), b"x", b"")
    gc.collect()
    for found in gc.get_objects():
        if isinstance(found, (bytes, bytearray, memoryview)):
            assert canary not in bytes(found)
        elif isinstance(found, SecretBytes):
            assert canary not in found.reveal()
    assert canary not in repr(hardware).encode()


def test_a_wrong_pin_a_missing_token_or_module_is_key_store_unavailable(
    softhsm: SoftHsmToken, spare_token: SoftHsmToken, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("00000000\n")
    wrong.chmod(0o600)
    # A token nobody in this process logged in to yet (PKCS#11 login belongs to the application, so a
    # second pool on an already logged-in token shares that login: docs/hsm.md).
    cases = {
        "not accepted": spare_token.settings(pin_source=f"file:{wrong}"),
        "No token": softhsm.settings(token_label="no-such-token"),
        "cannot be loaded": softhsm.settings(module="/nonexistent/libp11.so"),
        "OPENKMS_NO_SUCH_PIN": softhsm.settings(pin_source="env:OPENKMS_NO_SUCH_PIN"),
    }
    loose = tmp_path / "loose.pin"
    loose.write_text(softhsm.pin())
    loose.chmod(0o644)
    cases["chmod 600"] = softhsm.settings(pin_source=f"file:{loose}")
    for expected, settings in cases.items():
        sessions = TokenSessions(TokenConfig.from_settings(settings), wait_seconds=1)
        with pytest.raises(KeyStoreUnavailable, match=expected) as caught:
            sessions.check_health()
        assert softhsm.pin() not in caught.value.message
    with pytest.raises(InvalidArgument):
        TokenConfig.from_settings(softhsm.settings(pin_source="1234"))


def test_sessions_closed_under_the_pool_are_reopened(softhsm: SoftHsmToken) -> None:
    sessions = TokenSessions(TokenConfig.from_settings(softhsm.settings(sessions="2")), wait_seconds=2)
    provider = HardwareProvider(sessions, "kst-reopen")
    ref = _made(provider, KeySpec.ALIYUN_AES_256)
    iv, sealed = provider.encrypt(ref, b"before", b"")
    assert softhsm.label in provider.check_health()
    # The sessions die under the pool (as after a token reset): close them behind its back.
    for slot in list(sessions._idle):
        slot.session.close()
    with pytest.raises(KeyStoreUnavailable):
        provider.decrypt(ref, iv, sealed, b"")
    assert provider.decrypt(ref, iv, sealed, b"").reveal() == b"before"  # reopened and logged in again
    provider.close()
    with pytest.raises(KeyStoreUnavailable, match="closed"):
        provider.encrypt(ref, b"x", b"")


def test_threads_share_a_bounded_pool(softhsm: SoftHsmToken) -> None:
    sessions = TokenSessions(TokenConfig.from_settings(softhsm.settings(sessions="3")))
    provider = HardwareProvider(sessions, "kst-threads")
    ref = _made(provider, KeySpec.ALIYUN_AES_256)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for n in range(50):
                message = f"{threading.get_ident()}-{n}".encode()
                iv, sealed = provider.encrypt(ref, message, b"t")
                assert provider.decrypt(ref, iv, sealed, b"t").reveal() == message
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sessions._open <= 3
    provider.close()


def _pair_request(hardware: HardwareProvider, private_key: rsa.RSAPrivateKey, key_id: KeyId) -> ImportRequest:
    token_id = str(uuid.uuid4())
    public_der, stored = hardware.new_import_wrapping_key(key_id, token_id)
    encrypted = base64.b64decode(
        envelope(base64.b64encode(public_der).decode(), "RSAES_OAEP_SHA_1", pkcs8(private_key))
    )
    version = KeyVersionId(str(uuid.uuid4()))
    return ImportRequest(
        key_id, version, KeySpec.RSA_2048, token_id, WrappingAlgorithm.RSAES_OAEP_SHA_1, stored, encrypted
    )


def test_an_imported_rsa_key_pair_is_unwrapped_into_the_token(hardware: HardwareProvider) -> None:
    private_key = rsa.generate_private_key(65537, 2048)
    key_id = KeyId(f"key-{uuid.uuid4().hex[:8]}")
    request = _pair_request(hardware, private_key, key_id)
    stored, fingerprint = hardware.import_material(request, FINGERPRINT_KEY, None)
    ref = MaterialRef(key_id, request.version_id, KeySpec.RSA_2048, stored)
    digest = hashlib.sha256(b"imported pair").digest()
    signature = hardware.sign(ref, A.RSA_PKCS1_SHA_256, digest)
    private_key.public_key().verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    assert hardware.public_key_pem(ref).encode() == private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sealed = private_key.public_key().encrypt(
        b"to the pair", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)
    )
    assert hardware.asymmetric_decrypt(ref, A.RSAES_OAEP_SHA_1, sealed).reveal() == b"to the pair"
    # The same pair again matches its fingerprint; another pair, a 3072-bit one or garbage does not.
    assert (
        hardware.import_material(_pair_request(hardware, private_key, key_id), FINGERPRINT_KEY, fingerprint)[
            1
        ]
        == fingerprint
    )
    with pytest.raises(IncorrectKeyMaterial):
        other = rsa.generate_private_key(65537, 2048)
        hardware.import_material(_pair_request(hardware, other, key_id), FINGERPRINT_KEY, fingerprint)
    with pytest.raises(IncorrectKeyMaterial):
        hardware.import_material(
            _pair_request(hardware, rsa.generate_private_key(65537, 3072), key_id), FINGERPRINT_KEY, None
        )
    broken = _pair_request(hardware, private_key, key_id)
    with pytest.raises(IncorrectKeyMaterial):
        hardware.import_material(
            replace(broken, encrypted_material=broken.encrypted_material[:-8]), FINGERPRINT_KEY, None
        )


def test_material_destroyed_by_another_pool_is_reported_lost(
    hardware: HardwareProvider, softhsm: SoftHsmToken
) -> None:
    other = HardwareProvider(TokenSessions(TokenConfig.from_settings(softhsm.settings())), "kst-other-pool")
    ref = _made(hardware, KeySpec.ALIYUN_AES_256)
    hardware.encrypt(ref, b"found and kept", b"")  # the object is now cached by a session of `hardware`
    other.destroy(ref)
    answers: list[type[Exception]] = []
    for _ in range(2):
        try:
            hardware.encrypt(ref, b"x", b"")
        except (KeyStoreUnavailable, KeyMaterialLost) as exc:
            answers.append(type(exc))
    assert answers[-1] is KeyMaterialLost  # at once, or after the stale handle was dropped
    other.close()
