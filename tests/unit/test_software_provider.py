"""SoftwareProvider: AES-256-GCM round trips, tamper and move detection, the seal, the material cache,
and the Wycheproof AES-GCM vectors through the provider's own decrypt and encrypt paths."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.domain.ciphertext import Ciphertext, blob_aad, parse_ciphertext, v2_header_for
from openkms.domain.encryption_context import derived_aad
from openkms.errors import InvalidCiphertext, Sealed, StorageIntegrityError, UnsupportedOperation
from openkms.keystore import Keystore
from openkms.providers.base import (
    EXPORT_WRAPPING,
    KEY_PAIRS,
    MATERIAL_CACHE,
    MATERIAL_IMPORT,
    SYMMETRIC,
    MaterialRef,
    NewVersion,
    SymmetricCipher,
    random_bytes,
)
from openkms.providers.software import SoftwareProvider
from openkms.secret import SecretBytes
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import KeyId, KeySpec, KeyVersionId

KEY = KeyId("key-0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21")
OTHER_KEY = KeyId("key-1c0a8b4d-6e2f-4a3b-8d9c-8f7e6d5c4b32")
SPEC = KeySpec.ALIYUN_AES_256
CONTEXT = {"purpose": "test", "n": "1"}


def _version() -> KeyVersionId:
    return KeyVersionId(str(uuid.uuid4()))


@pytest.fixture
def keystore() -> Keystore:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    return keystore


@pytest.fixture
def provider(keystore: Keystore) -> SoftwareProvider:
    return SoftwareProvider(keystore)


def _new_ref(provider: SoftwareProvider, key_id: KeyId = KEY) -> MaterialRef:
    version = _version()
    return MaterialRef(key_id, version, SPEC, provider.generate_symmetric(NewVersion(key_id, version, SPEC)))


class _Versions:
    """Stands in for the service's version lookup: blob header -> MaterialRef, else InvalidCiphertext."""

    def __init__(self, provider: SymmetricCipher, *refs: MaterialRef) -> None:
        self.provider = provider
        self.refs = {ref.version_id: ref for ref in refs}

    def encrypt(self, ref: MaterialRef, plaintext: bytes, context: dict[str, str] | None) -> bytes:
        header = v2_header_for(ref.version_id)
        iv, sealed = self.provider.encrypt(ref, plaintext, blob_aad(header, derived_aad(context) or b""))
        return Ciphertext(ref.version_id, iv, sealed).to_bytes()

    def decrypt(self, blob: bytes, context: dict[str, str] | None) -> bytes:
        parsed = parse_ciphertext(blob)
        ref = self.refs.get(parsed.version_id)
        if ref is None:
            raise InvalidCiphertext()
        aad = blob_aad(parsed.header(), derived_aad(context) or b"")
        return self.provider.decrypt(ref, parsed.iv, parsed.sealed, aad).reveal()


def test_provider_satisfies_the_protocol(provider: SoftwareProvider) -> None:
    checked: SymmetricCipher = provider  # statically: mypy checks the protocol
    assert checked is provider
    # and at run time: the registry finds every capability in it
    for capability in (SYMMETRIC, KEY_PAIRS, MATERIAL_IMPORT, EXPORT_WRAPPING, MATERIAL_CACHE):
        assert capability.offered_by(provider) is provider, capability


def test_generate_symmetric_returns_wrapped_32_byte_material(
    provider: SoftwareProvider, keystore: Keystore
) -> None:
    version = _version()
    wrapped = provider.generate_symmetric(NewVersion(KEY, version, SPEC))
    material = keystore.unwrap(KEY, version, SPEC, wrapped)
    assert len(material) == 32
    assert material.reveal() not in wrapped
    assert provider.generate_symmetric(NewVersion(KEY, version, SPEC)) != wrapped


def test_generate_refuses_unknown_spec(provider: SoftwareProvider) -> None:
    with pytest.raises(UnsupportedOperation):
        provider.generate_symmetric(NewVersion(KEY, _version(), cast(KeySpec, "RSA_2048")))


@pytest.mark.parametrize("size", [0, 1, 16, 64, 4096, 6144])
def test_round_trip(provider: SoftwareProvider, size: int) -> None:
    versions = _Versions(provider, ref := _new_ref(provider))
    plaintext = os.urandom(size)
    blob = versions.encrypt(ref, plaintext, CONTEXT)
    assert len(blob) == 36 + 12 + size + 16  # a v2 blob
    assert versions.decrypt(blob, CONTEXT) == plaintext
    assert versions.decrypt(blob, {"n": "1", "purpose": "test"}) == plaintext


def test_iv_is_fresh_every_time(provider: SoftwareProvider) -> None:
    ref = _new_ref(provider)
    ivs = {provider.encrypt(ref, b"x", b"")[0] for _ in range(1000)}
    assert len(ivs) == 1000
    assert {len(iv) for iv in ivs} == {12}


def test_decrypt_returns_secret_bytes(provider: SoftwareProvider) -> None:
    ref = _new_ref(provider)
    iv, sealed = provider.encrypt(ref, b"plaintext", b"aad")
    result = provider.decrypt(ref, iv, sealed, b"aad")
    assert isinstance(result, SecretBytes)
    assert "plaintext" not in repr(result)


@pytest.mark.parametrize(
    "context", [None, {}, {"purpose": "Test", "n": "1"}, {"purpose": "test"}, {**CONTEXT, "x": ""}]
)
def test_wrong_context_fails(provider: SoftwareProvider, context: dict[str, str] | None) -> None:
    versions = _Versions(provider, ref := _new_ref(provider))
    blob = versions.encrypt(ref, b"secret", CONTEXT)
    with pytest.raises(InvalidCiphertext):
        versions.decrypt(blob, context)


def test_every_bit_flip_fails_with_the_same_message(provider: SoftwareProvider) -> None:
    ref, other = _new_ref(provider), _new_ref(provider)
    versions = _Versions(provider, ref, other)
    blob = versions.encrypt(ref, b"sixty-four bytes of plaintext".ljust(64, b"."), CONTEXT)
    expected = InvalidCiphertext().message
    for position in range(len(blob)):
        for bit in range(8):
            flipped = bytearray(blob)
            flipped[position] ^= 1 << bit
            with pytest.raises(InvalidCiphertext) as caught:
                versions.decrypt(bytes(flipped), CONTEXT)
            assert caught.value.message == expected, (position, bit)


def test_blob_moved_to_another_key_version_fails(provider: SoftwareProvider) -> None:
    ref, other = _new_ref(provider), _new_ref(provider, OTHER_KEY)
    versions = _Versions(provider, ref, other)
    parsed = parse_ciphertext(versions.encrypt(ref, b"secret", CONTEXT))
    moved = Ciphertext(other.version_id, parsed.iv, parsed.sealed).to_bytes()
    with pytest.raises(InvalidCiphertext):
        versions.decrypt(moved, CONTEXT)
    # Even with the header left alone, the other version's key does not open it.
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(
            other, parsed.iv, parsed.sealed, blob_aad(parsed.header(), derived_aad(CONTEXT) or b"")
        )


@pytest.mark.parametrize("iv_len", [0, 8, 11, 13, 16])
def test_wrong_iv_length_is_refused_before_unwrapping(keystore: Keystore, iv_len: int) -> None:
    provider = SoftwareProvider(keystore)
    ref = _new_ref(provider)
    unwraps = _count_unwraps(keystore)
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(ref, b"\x00" * iv_len, b"\x00" * 32, b"")
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(ref, b"\x00" * 12, b"\x00" * 15, b"")
    assert unwraps == []


def test_tampered_wrapped_material_is_a_storage_fault(provider: SoftwareProvider) -> None:
    ref = _new_ref(provider)
    tampered = bytearray(ref.wrapped)
    tampered[-1] ^= 1
    with pytest.raises(StorageIntegrityError):
        provider.encrypt(MaterialRef(ref.key_id, ref.version_id, ref.spec, bytes(tampered)), b"x", b"")


def test_wrapped_row_moved_to_another_key_fails(provider: SoftwareProvider) -> None:
    ref = _new_ref(provider)
    with pytest.raises(StorageIntegrityError):
        provider.encrypt(MaterialRef(OTHER_KEY, ref.version_id, ref.spec, ref.wrapped), b"x", b"")
    with pytest.raises(StorageIntegrityError):
        provider.encrypt(MaterialRef(ref.key_id, _version(), ref.spec, ref.wrapped), b"x", b"")


# --- the seal and the cache ------------------------------------------------------------------------


def _count_unwraps(keystore: Keystore) -> list[KeyVersionId]:
    calls: list[KeyVersionId] = []
    real = keystore.unwrap

    def counting(key_id: KeyId, version_id: KeyVersionId, spec: KeySpec, wrapped: bytes) -> SecretBytes:
        calls.append(version_id)
        return real(key_id, version_id, spec, wrapped)

    keystore.unwrap = counting  # type: ignore[method-assign]
    return calls


def test_sealed_keystore_refuses_even_with_a_warm_cache(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore)
    ref = _new_ref(provider)
    iv, sealed = provider.encrypt(ref, b"warm", b"")
    keystore.seal()
    assert "cached_versions=0" in repr(provider)
    with pytest.raises(Sealed):
        provider.encrypt(ref, b"x", b"")
    with pytest.raises(Sealed):
        provider.decrypt(ref, iv, sealed, b"")
    with pytest.raises(Sealed):
        provider.generate_symmetric(NewVersion(KEY, _version(), SPEC))
    keystore.unseal()
    assert provider.decrypt(ref, iv, sealed, b"").reveal() == b"warm"


def test_cache_avoids_unwrapping_on_every_call(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore)
    ref = _new_ref(provider)
    unwraps = _count_unwraps(keystore)
    for _ in range(10):
        iv, sealed = provider.encrypt(ref, b"x", b"")
        provider.decrypt(ref, iv, sealed, b"")
    assert unwraps == [ref.version_id]


def test_cache_is_bounded_and_least_recently_used(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore, cache_size=2)
    a, b, c = _new_ref(provider), _new_ref(provider), _new_ref(provider)
    unwraps = _count_unwraps(keystore)
    for ref in (a, b, a, c):  # c evicts b, the least recently used
        provider.encrypt(ref, b"x", b"")
    assert unwraps == [a.version_id, b.version_id, c.version_id]
    provider.encrypt(a, b"x", b"")
    provider.encrypt(c, b"x", b"")
    assert len(unwraps) == 3
    provider.encrypt(b, b"x", b"")
    assert unwraps[-1] == b.version_id
    assert "cached_versions=2" in repr(provider)


def test_cache_size_zero_disables_the_cache(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore, cache_size=0)
    ref = _new_ref(provider)
    unwraps = _count_unwraps(keystore)
    provider.encrypt(ref, b"x", b"")
    provider.encrypt(ref, b"x", b"")
    assert len(unwraps) == 2
    with pytest.raises(ValueError):
        SoftwareProvider(keystore, cache_size=-1)


def test_forget_drops_the_cached_version(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore)
    ref = _new_ref(provider)
    unwraps = _count_unwraps(keystore)
    provider.encrypt(ref, b"x", b"")
    provider.forget(ref.version_id)
    provider.forget(_version())  # unknown versions are fine
    provider.encrypt(ref, b"x", b"")
    assert unwraps == [ref.version_id, ref.version_id]


def test_a_miss_racing_with_seal_leaves_nothing_cached(keystore: Keystore) -> None:
    provider = SoftwareProvider(keystore)
    ref = _new_ref(provider)
    real = keystore.unwrap

    def unwrap_then_seal(
        key_id: KeyId, version_id: KeyVersionId, spec: KeySpec, wrapped: bytes
    ) -> SecretBytes:
        material = real(key_id, version_id, spec, wrapped)
        keystore.seal()  # lands after the unwrap, before the provider caches the cipher
        return material

    keystore.unwrap = unwrap_then_seal  # type: ignore[method-assign]
    provider.encrypt(ref, b"in flight", b"")
    assert "cached_versions=0" in repr(provider)


def test_reprs_hold_no_material(keystore: Keystore, provider: SoftwareProvider) -> None:
    ref = _new_ref(provider)
    material = keystore.unwrap(ref.key_id, ref.version_id, ref.spec, ref.wrapped).reveal()
    provider.encrypt(ref, b"x", b"")
    text = repr(provider) + repr(ref) + repr(keystore)
    assert material.hex() not in text
    assert ref.wrapped.hex() not in text
    assert repr(ref.wrapped) not in text


def test_random_bytes() -> None:
    key = random_bytes(32)
    assert isinstance(key, SecretBytes)
    assert len(key) == 32
    assert random_bytes(32) != key
    assert len(random_bytes(0)) == 0
    with pytest.raises(ValueError):
        random_bytes(-1)


# --- Wycheproof AES-GCM ----------------------------------------------------------------------------


def _vectors_dir() -> Path:
    override = os.environ.get("OPENKMS_VECTORS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "vectors"


_AES_GCM_FILE = _vectors_dir() / "wycheproof" / "aes_gcm_test.json"


@dataclass(frozen=True)
class GcmVector:
    tc_id: int
    key_size: int
    iv_size: int
    key: bytes
    iv: bytes
    aad: bytes
    msg: bytes
    ct: bytes
    tag: bytes
    result: str
    flags: tuple[str, ...]


def _load_gcm_vectors() -> list[GcmVector]:
    document: dict[str, Any] = json.loads(_AES_GCM_FILE.read_text())
    vectors = []
    for group in document["testGroups"]:
        for test in group["tests"]:
            vectors.append(
                GcmVector(
                    tc_id=test["tcId"],
                    key_size=group["keySize"],
                    iv_size=group["ivSize"],
                    key=bytes.fromhex(test["key"]),
                    iv=bytes.fromhex(test["iv"]),
                    aad=bytes.fromhex(test["aad"]),
                    msg=bytes.fromhex(test["msg"]),
                    ct=bytes.fromhex(test["ct"]),
                    tag=bytes.fromhex(test["tag"]),
                    result=test["result"],
                    flags=tuple(test["flags"]),
                )
            )
    return vectors


_GCM_VECTORS = _load_gcm_vectors()


def _params(vectors: list[GcmVector]) -> list[Any]:
    return [pytest.param(vector, id=f"tc{vector.tc_id}") for vector in vectors]


_PROVIDER_VECTORS = [v for v in _GCM_VECTORS if v.key_size == 256 and v.iv_size == 96]
_PROVIDER_REJECTS = [v for v in _GCM_VECTORS if v.key_size == 256 and v.iv_size != 96]
_HARNESS_VECTORS = [v for v in _GCM_VECTORS if v.key_size in (128, 192)]
# pyca/cryptography refuses GCM IVs shorter than 8 or longer than 128 bytes by policy (ValueError).
_PYCA_IV_RANGE = range(8, 129)


def test_wycheproof_file_has_the_expected_shape() -> None:
    assert len(_GCM_VECTORS) == 316
    assert len(_PROVIDER_VECTORS) == 66
    assert {v.result for v in _PROVIDER_VECTORS} == {"valid", "invalid"}


@pytest.fixture(scope="module")
def vector_keystore() -> Iterator[Keystore]:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    yield keystore
    keystore.seal()


def _vector_ref(keystore: Keystore, vector: GcmVector) -> MaterialRef:
    version = KeyVersionId(str(uuid.UUID(int=vector.tc_id)))
    wrapped = keystore.wrap(KEY, version, SPEC, SecretBytes(vector.key))
    return MaterialRef(KEY, version, SPEC, wrapped)


@pytest.mark.parametrize("vector", _params(_PROVIDER_VECTORS))
def test_wycheproof_decrypt_through_provider(vector_keystore: Keystore, vector: GcmVector) -> None:
    provider = SoftwareProvider(vector_keystore)
    ref = _vector_ref(vector_keystore, vector)
    if vector.result == "valid":
        assert provider.decrypt(ref, vector.iv, vector.ct + vector.tag, vector.aad).reveal() == vector.msg
    else:
        assert vector.result == "invalid"
        with pytest.raises(InvalidCiphertext):
            provider.decrypt(ref, vector.iv, vector.ct + vector.tag, vector.aad)


@pytest.mark.parametrize("vector", _params([v for v in _PROVIDER_VECTORS if v.result == "valid"]))
def test_wycheproof_encrypt_through_provider(vector_keystore: Keystore, vector: GcmVector) -> None:
    def fixed_iv(n: int) -> bytes:
        assert n == 12
        return vector.iv

    provider = SoftwareProvider(vector_keystore, iv_source=fixed_iv)
    iv, sealed = provider.encrypt(_vector_ref(vector_keystore, vector), vector.msg, vector.aad)
    assert (iv, sealed) == (vector.iv, vector.ct + vector.tag)


@pytest.mark.parametrize("vector", _params(_PROVIDER_REJECTS))
def test_wycheproof_other_iv_sizes_are_rejected_by_provider(
    vector_keystore: Keystore, vector: GcmVector
) -> None:
    # We only make 96-bit IVs, so the provider refuses every other length, valid or not, without crashing.
    provider = SoftwareProvider(vector_keystore)
    with pytest.raises(InvalidCiphertext):
        provider.decrypt(_vector_ref(vector_keystore, vector), vector.iv, vector.ct + vector.tag, vector.aad)


@pytest.mark.parametrize("vector", _params(_HARNESS_VECTORS + _PROVIDER_REJECTS))
def test_wycheproof_harness_with_plain_aesgcm(vector: GcmVector) -> None:
    # The same loader and checks against pyca directly, on the key and IV sizes the provider never sees:
    # proof that the harness reads the file right, independent of our code.
    if len(vector.iv) not in _PYCA_IV_RANGE:
        with pytest.raises(ValueError):
            AESGCM(vector.key).decrypt(vector.iv, vector.ct + vector.tag, vector.aad)
        return
    cipher = AESGCM(vector.key)
    if vector.result == "valid":
        assert cipher.decrypt(vector.iv, vector.ct + vector.tag, vector.aad) == vector.msg
        assert cipher.encrypt(vector.iv, vector.msg, vector.aad) == vector.ct + vector.tag
    else:
        with pytest.raises(InvalidTag):
            cipher.decrypt(vector.iv, vector.ct + vector.tag, vector.aad)


def test_a_change_on_the_node_drops_the_material_held_in_memory(keystore: Keystore) -> None:
    from openkms.node.generation import LocalGeneration

    changes = LocalGeneration()
    provider = SoftwareProvider(keystore, changes=changes.current)
    first, second = _new_ref(provider), _new_ref(provider)
    provider.encrypt(first, b"x", b"")
    provider.encrypt(second, b"x", b"")
    assert "cached_versions=2" in repr(provider)
    changes.bump()  # e.g. a key was disabled or destroyed by another worker
    provider.encrypt(second, b"x", b"")
    assert "cached_versions=1" in repr(provider)
