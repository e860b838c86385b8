"""Which provider holds the keys of each kind of key store, and what each one can do.

Owns `ProviderRegistry`: a kind of key store is served either by one provider for all its instances
(software: the keystore is the server's) or by a factory that makes one provider per instance from
the instance's settings (hardware: its module, token and PIN; external: its proxy and credential),
made on first use and made again when the instance's settings change (its revision). The service
asks for a capability (`providers.base.SYMMETRIC`, `KEY_PAIRS`, ...) of a key's instance and gets the
provider as that protocol, or UnsupportedOperation naming what is missing: a kind no provider
serves, or a provider that cannot do what the operation needs. Never touches key material itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from openkms.domain.instance import Instance
from openkms.errors import UnsupportedOperation
from openkms.providers.base import MATERIAL_CACHE, Capability
from openkms.secret import SecretBytes
from openkms.types import InstanceId, InstanceKind, KeyVersionId

__all__ = ["ProviderFactory", "ProviderRegistry", "SecretSource", "close_provider"]

P = TypeVar("P")

ProviderFactory = Callable[[Instance, SecretBytes | None], object]
"""Makes the provider of one instance from its settings and its unsealed secret (if it has one);
may raise KeyStoreUnavailable or InvalidArgument (settings it cannot use)."""

SecretSource = Callable[[InstanceId], SecretBytes | None]
"""An instance's unsealed secret, read from the store when its provider is made."""


class ProviderRegistry:
    """Providers by instance kind. Built once by the application factory; read-only after that."""

    def __init__(self, secrets: SecretSource | None = None) -> None:
        self._secrets = secrets
        self._providers: dict[InstanceKind, object] = {}
        self._factories: dict[InstanceKind, ProviderFactory] = {}
        # Per-instance providers by instance id, with the settings revision they were made from.
        self._made: dict[InstanceId, tuple[int, object]] = {}
        self._making = threading.Lock()
        # (kind, capability) -> the provider as that capability, or None: decided once per pair, so
        # the hot path pays a dict lookup rather than a runtime protocol check. Values are typed by
        # their key's capability, which a dict cannot express.
        self._offers: dict[tuple[InstanceKind, Capability[Any]], Any] = {}

    def register(self, kind: InstanceKind, provider: object) -> None:
        """One provider for every instance of `kind` (and, for software, the default keys)."""
        if kind in self._providers or kind in self._factories:
            raise ValueError(f"a provider for {kind} key stores is already registered")
        self._providers[kind] = provider
        self._offers.clear()

    def register_factory(self, kind: InstanceKind, factory: ProviderFactory) -> None:
        """A provider per instance of `kind`, made by `factory` from the instance's settings."""
        if kind in self._providers or kind in self._factories:
            raise ValueError(f"a provider for {kind} key stores is already registered")
        self._factories[kind] = factory

    @property
    def kinds(self) -> frozenset[InstanceKind]:
        return frozenset(self._providers) | frozenset(self._factories)

    def shared(self, kind: InstanceKind) -> bool:
        """Whether one provider serves every instance of `kind` (so a caller may keep it per kind)."""
        return kind in self._providers

    def for_instance(self, instance: Instance | None, capability: Capability[P]) -> P:
        """The provider of the key store `instance` (None: the default keys, held in software) as
        `capability`; UnsupportedOperation if there is none or it lacks the capability."""
        if instance is None:
            return self.capability(InstanceKind.SOFTWARE, capability)
        if instance.kind in self._providers or instance.kind not in self._factories:
            return self.capability(instance.kind, capability)
        provider = self.provider_of(instance)
        offered: P | None = capability.offered_by(provider)
        if offered is None:
            raise UnsupportedOperation(
                f"The provider of {instance.kind} key stores cannot {capability.name}."
            )
        return offered

    def provider_of(self, instance: Instance) -> object:
        """The provider made for `instance` (made now if there is none, or its settings changed)."""
        made = self._made.get(instance.instance_id)
        if made is not None and made[0] == instance.revision:
            return made[1]
        factory = self._factories.get(instance.kind)
        if factory is None:
            return self.capability(instance.kind, _ANY)
        with self._making:
            made = self._made.get(instance.instance_id)
            if made is not None and made[0] == instance.revision:
                return made[1]
            secret = None if self._secrets is None else self._secrets(instance.instance_id)
            provider = factory(instance, secret)
            old = self._made.get(instance.instance_id)
            self._made[instance.instance_id] = (instance.revision, provider)
        if old is not None:
            close_provider(old[1])
        return provider

    def probe(
        self, instance: Instance, secret: SecretBytes | None, capability: Capability[P]
    ) -> tuple[object, P]:
        """A provider made from settings not stored yet (an instance being created or changed), kept
        by no one: the caller closes it (`close_provider`). UnsupportedOperation as `for_instance`."""
        factory = self._factories.get(instance.kind)
        if factory is None:
            raise UnsupportedOperation(f"This server has no provider for {instance.kind} key stores.")
        provider = factory(instance, secret)
        offered: P | None = capability.offered_by(provider)
        if offered is None:
            close_provider(provider)
            raise UnsupportedOperation(
                f"The provider of {instance.kind} key stores cannot {capability.name}."
            )
        return provider, offered

    def made(self) -> list[object]:
        """The per-instance providers made so far (for health checks and shutdown)."""
        return [provider for _, provider in list(self._made.values())]

    def follow_changes(self) -> None:
        """Let every provider that caches material drop what a change made stale, now."""
        for provider in [*self._providers.values(), *self.made()]:
            follow = getattr(provider, "follow_changes", None)
            if follow is not None:
                follow()

    def close(self) -> None:
        """Close every per-instance provider that holds resources (sessions, connections)."""
        with self._making:
            made, self._made = self._made, {}
        for _, provider in made.values():
            close_provider(provider)

    def capability(self, kind: InstanceKind, capability: Capability[P]) -> P:
        """The provider of `kind` key stores as `capability`; UnsupportedOperation if there is no such
        provider or it lacks the capability."""
        try:
            offered: P | None = self._offers[(kind, capability)]
        except KeyError:
            provider = self._providers.get(kind)
            offered = None if provider is None else capability.offered_by(provider)
            self._offers[(kind, capability)] = offered
        if offered is None:
            if kind not in self._providers:
                raise UnsupportedOperation(f"This server has no provider for {kind} key stores.")
            raise UnsupportedOperation(f"The provider of {kind} key stores cannot {capability.name}.")
        return offered

    def forget(self, version_id: KeyVersionId) -> None:
        """Every provider that caches material drops what it holds for this version."""
        for provider in [*self._providers.values(), *self.made()]:
            cache = MATERIAL_CACHE.offered_by(provider)
            if cache is not None:
                cache.forget(version_id)


_ANY: Capability[object] = Capability("serve keys", object)  # any provider, as itself


def close_provider(provider: object) -> None:
    """Let go of what a provider holds (sessions, connections), if it holds anything."""
    close = getattr(provider, "close", None)
    if callable(close):
        close()
