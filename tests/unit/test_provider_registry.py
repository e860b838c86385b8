"""The provider registry: a provider per kind of key store, asked for capabilities. A kind nobody
serves, or a provider without the capability an operation needs, is a clear UnsupportedOperation."""

from __future__ import annotations

import pytest

from openkms.errors import UnsupportedOperation
from openkms.keystore import Keystore
from openkms.providers.base import (
    EXPORT_WRAPPING,
    KEY_PAIRS,
    MATERIAL_IMPORT,
    SYMMETRIC,
    MaterialRef,
    NewVersion,
)
from openkms.providers.registry import ProviderRegistry
from openkms.providers.software import SoftwareProvider
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import InstanceKind, KeyId, KeySpec, KeyVersionId
from tests.unit.test_software_provider import _count_unwraps


class SignOnly:
    """What a proxy to an external key store might offer: key pairs, nothing else."""

    def __init__(self) -> None:
        self.forgotten: list[KeyVersionId] = []

    def generate_key_pair(self, new: NewVersion) -> bytes:
        return b"handle"

    def public_key_pem(self, ref: object) -> str:
        return ""

    def sign(self, ref: object, algorithm: object, digest: bytes) -> bytes:
        return b""

    def verify(self, ref: object, algorithm: object, digest: bytes, signature: bytes) -> None:
        return None

    def asymmetric_encrypt(self, ref: object, algorithm: object, plaintext: bytes) -> bytes:
        return b""

    def asymmetric_decrypt(self, ref: object, algorithm: object, ciphertext: bytes) -> bytes:
        return b""


@pytest.fixture
def keystore() -> Keystore:
    keystore = Keystore(StaticRoot(), MemoryKeyringStore())
    keystore.unseal()
    return keystore


@pytest.fixture
def software(keystore: Keystore) -> SoftwareProvider:
    return SoftwareProvider(keystore)


def test_a_registered_provider_is_chosen_by_kind_and_capability(software: SoftwareProvider) -> None:
    registry = ProviderRegistry()
    registry.register(InstanceKind.SOFTWARE, software)
    assert registry.kinds == {InstanceKind.SOFTWARE}
    for capability in (SYMMETRIC, KEY_PAIRS, MATERIAL_IMPORT, EXPORT_WRAPPING):
        assert registry.capability(InstanceKind.SOFTWARE, capability) is software
        assert registry.capability(InstanceKind.SOFTWARE, capability) is software  # decided once


def test_a_kind_nobody_serves_is_an_unsupported_operation(software: SoftwareProvider) -> None:
    registry = ProviderRegistry()
    registry.register(InstanceKind.SOFTWARE, software)
    for _ in range(2):  # the answer is remembered, the error is not lost
        with pytest.raises(UnsupportedOperation, match="no provider for hardware key stores"):
            registry.capability(InstanceKind.HARDWARE, SYMMETRIC)


def test_a_provider_without_the_capability_is_an_unsupported_operation() -> None:
    registry = ProviderRegistry()
    sign_only = SignOnly()
    registry.register(InstanceKind.EXTERNAL, sign_only)
    assert registry.capability(InstanceKind.EXTERNAL, KEY_PAIRS) is sign_only
    with pytest.raises(UnsupportedOperation, match="external key stores cannot use symmetric keys"):
        registry.capability(InstanceKind.EXTERNAL, SYMMETRIC)
    with pytest.raises(UnsupportedOperation, match="cannot wrap data keys for export"):
        registry.capability(InstanceKind.EXTERNAL, EXPORT_WRAPPING)


def test_a_kind_is_registered_once(software: SoftwareProvider) -> None:
    registry = ProviderRegistry()
    registry.register(InstanceKind.SOFTWARE, software)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(InstanceKind.SOFTWARE, software)


def test_forget_reaches_every_provider_that_caches(keystore: Keystore, software: SoftwareProvider) -> None:
    registry = ProviderRegistry()
    registry.register(InstanceKind.SOFTWARE, software)
    registry.register(InstanceKind.EXTERNAL, SignOnly())  # caches nothing: skipped, no error
    key_id, version_id, spec = KeyId("key-1"), KeyVersionId("v-1"), KeySpec.ALIYUN_AES_256
    ref = MaterialRef(
        key_id, version_id, spec, software.generate_symmetric(NewVersion(key_id, version_id, spec))
    )
    unwraps = _count_unwraps(keystore)
    software.encrypt(ref, b"x", b"")
    software.encrypt(ref, b"x", b"")  # cached: no second unwrap
    registry.forget(version_id)
    software.encrypt(ref, b"x", b"")  # forgotten: unwrapped again
    assert unwraps == [version_id, version_id]
