"""The provider registry: a provider per kind of key store, asked for capabilities. A kind nobody
serves, or a provider without the capability an operation needs, is a clear UnsupportedOperation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from openkms.domain.instance import Instance
from openkms.errors import UnsupportedOperation
from openkms.keystore import Keystore
from openkms.providers.base import (
    EXPORT_WRAPPING,
    HEALTH_CHECK,
    KEY_PAIRS,
    MATERIAL_IMPORT,
    SYMMETRIC,
    MaterialRef,
    NewVersion,
)
from openkms.providers.registry import ProviderRegistry
from openkms.providers.software import SoftwareProvider
from openkms.secret import SecretBytes
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AccountId, InstanceId, InstanceKind, KeyId, KeySpec, KeyVersionId, RegionId
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


class Backend:
    """A per-instance provider that records what it was made from and whether it was closed."""

    def __init__(self, instance: Instance, secret: SecretBytes | None) -> None:
        self.instance = instance
        self.secret = None if secret is None else secret.reveal()
        self.closed = False

    def check_health(self) -> str:
        return f"ok {self.instance.settings.get('module')}"

    def close(self) -> None:
        self.closed = True


def _instance(instance_id: str = "kst-hsm", revision: int = 0, **settings: str) -> Instance:
    return Instance(
        InstanceId(instance_id),
        AccountId("1"),
        RegionId("cn-hangzhou"),
        InstanceKind.HARDWARE,
        "hsm",
        datetime(2026, 1, 1, tzinfo=UTC),
        0,
        settings,
        revision,
    )


def test_per_instance_providers_are_made_once_per_settings_revision(software: SoftwareProvider) -> None:
    secrets = {"kst-hsm": SecretBytes(b"s3cret")}
    registry = ProviderRegistry(secrets=lambda instance_id: secrets.get(instance_id))
    registry.register(InstanceKind.SOFTWARE, software)
    registry.register_factory(InstanceKind.HARDWARE, Backend)
    assert not registry.shared(InstanceKind.HARDWARE) and registry.shared(InstanceKind.SOFTWARE)
    first = registry.for_instance(_instance(module="a"), HEALTH_CHECK)
    assert isinstance(first, Backend) and first.secret == b"s3cret"
    assert registry.for_instance(_instance(module="a"), HEALTH_CHECK) is first
    other = registry.for_instance(_instance("kst-other", module="b"), HEALTH_CHECK)
    assert other is not first and isinstance(other, Backend) and other.secret is None
    changed = registry.for_instance(_instance(revision=1, module="c"), HEALTH_CHECK)
    assert changed is not first and first.closed and changed.check_health() == "ok c"
    assert registry.for_instance(None, SYMMETRIC) is software  # the default keys: software
    with pytest.raises(UnsupportedOperation, match="hardware key stores cannot use symmetric keys"):
        registry.for_instance(_instance(revision=1), SYMMETRIC)
    registry.close()
    assert changed.closed and other.closed and registry.made() == []


def test_a_probe_is_kept_by_no_one_and_a_factory_is_registered_once() -> None:
    registry = ProviderRegistry()
    registry.register_factory(InstanceKind.HARDWARE, Backend)
    provider, health = registry.probe(_instance(module="x"), SecretBytes(b"k"), HEALTH_CHECK)
    assert provider is health and registry.made() == []
    with pytest.raises(ValueError, match="already registered"):
        registry.register(InstanceKind.HARDWARE, object())
    with pytest.raises(UnsupportedOperation, match="no provider for external key stores"):
        registry.probe(replace(_instance(), kind=InstanceKind.EXTERNAL), None, HEALTH_CHECK)
