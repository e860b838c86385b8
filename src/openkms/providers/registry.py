"""Which provider holds the keys of each kind of key store, and what each one can do.

Owns `ProviderRegistry`: providers are registered by instance kind (software today; hardware and
external key stores next) and chosen per key, by the kind of the key's instance. The service asks
for a capability (`providers.base.SYMMETRIC`, `KEY_PAIRS`, ...) and gets the provider as that
protocol, or UnsupportedOperation naming what is missing: a kind no provider serves, or a provider
that cannot do what the operation needs. Never touches key material itself.
"""

from __future__ import annotations

from typing import Any, TypeVar

from openkms.errors import UnsupportedOperation
from openkms.providers.base import MATERIAL_CACHE, Capability
from openkms.types import InstanceKind, KeyVersionId

__all__ = ["ProviderRegistry"]

P = TypeVar("P")


class ProviderRegistry:
    """Providers by instance kind. Built once by the application factory; read-only after that."""

    def __init__(self) -> None:
        self._providers: dict[InstanceKind, object] = {}
        # (kind, capability) -> the provider as that capability, or None: decided once per pair, so
        # the hot path pays a dict lookup rather than a runtime protocol check. Values are typed by
        # their key's capability, which a dict cannot express.
        self._offers: dict[tuple[InstanceKind, Capability[Any]], Any] = {}

    def register(self, kind: InstanceKind, provider: object) -> None:
        if kind in self._providers:
            raise ValueError(f"a provider for {kind} key stores is already registered")
        self._providers[kind] = provider
        self._offers.clear()

    @property
    def kinds(self) -> frozenset[InstanceKind]:
        return frozenset(self._providers)

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
        for provider in self._providers.values():
            cache = MATERIAL_CACHE.offered_by(provider)
            if cache is not None:
                cache.forget(version_id)
