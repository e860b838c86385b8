"""The one key-operation pipeline every cryptographic use case runs, symmetric and asymmetric, data-key
export and key import: resolve the key (id, alias or ARN) -> authorize the action -> lifecycle and
material checks (state, imported material's expiry, the spec and usage the operation needs) -> the
provider that holds the key's material (by the kind of the key's instance, `providers.registry`),
as the capability the operation needs -> the operation. A dry run (DryRun=true) stops right before the
operation (`end_dry_run`).

Owns `KeyOperations`, what an operation needs of its key (`Need`), and the cache of version
references. An integrated service naming its own missing service key gets it made here, as an
explicit step before resolution; resolution itself never creates keys. Errors raised after the key
was resolved name it (`OpenKMSError.resource`), so a denied call is recorded against its key. Never
sees key material: providers hold it behind `MaterialRef`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from openkms.clock import Clock
from openkms.domain.key import Key
from openkms.domain.lifecycle import ensure_material_current, ensure_usable
from openkms.domain.specs import SPEC_RULES, SpecRule
from openkms.errors import (
    AliasNotFound,
    DryRunPassed,
    InvalidCiphertext,
    KeyVersionNotFound,
    OpenKMSError,
    UnsupportedOperation,
)
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.providers.base import (
    KEY_PAIRS,
    SYMMETRIC,
    Capability,
    Invocation,
    KeyPairs,
    MaterialRef,
    SymmetricCipher,
)
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.service.authorization import authorize
from openkms.service.cache import TtlCache
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource
from openkms.service.service_keys import ServiceKeyService, own_service_alias
from openkms.types import KeyUsage

__all__ = [
    "ANY_KEY_PAIR",
    "ENCRYPTION_KEY_PAIR",
    "SIGNING_KEY_PAIR",
    "SYMMETRIC_KEY",
    "KeyOperations",
    "Need",
    "Target",
    "end_dry_run",
]


P = TypeVar("P")


_RESOURCES_KEPT = 100_000  # a bound on the memo of resources; past it, it starts again


@dataclass(frozen=True, slots=True)
class Need(Generic[P]):
    """What an operation needs of its key: symmetric or a key pair, (if any) one usage, and the
    capability it asks of the key's provider."""

    capability: Capability[P]
    symmetric: bool
    usage: KeyUsage | None = None

    def check(self, action: str, key: Key, rule: SpecRule) -> None:
        if rule.symmetric and not self.symmetric:
            raise UnsupportedOperation(f"{action} needs an asymmetric key; this key is {key.spec}.")
        if self.symmetric and not rule.symmetric:
            raise UnsupportedOperation(f"{action} needs a symmetric key; this key is {key.spec}.")
        if self.usage is not None and not key.allows(self.usage):
            raise UnsupportedOperation(
                f"{action} needs a key with usage {self.usage}; this key is {key.usage}."
            )


SYMMETRIC_KEY: Need[SymmetricCipher] = Need(SYMMETRIC, symmetric=True, usage=KeyUsage.ENCRYPT_DECRYPT)
ANY_KEY_PAIR: Need[KeyPairs] = Need(KEY_PAIRS, symmetric=False)
SIGNING_KEY_PAIR: Need[KeyPairs] = Need(KEY_PAIRS, symmetric=False, usage=KeyUsage.SIGN_VERIFY)
ENCRYPTION_KEY_PAIR: Need[KeyPairs] = Need(KEY_PAIRS, symmetric=False, usage=KeyUsage.ENCRYPT_DECRYPT)


def end_dry_run(ctx: RequestContext, resource: Resource) -> None:
    """Where a dry run stops: the request was authenticated and authorized and passed every check up
    to here, and nothing has been done yet (called right before the provider acts)."""
    if ctx.dry_run:
        raise DryRunPassed().about(resource)


class Target(NamedTuple, Generic[P]):
    """A key that passed the pipeline for one action, and its provider as the capability needed
    (a NamedTuple: one is built per cryptographic request)."""

    key: Key
    rule: SpecRule
    provider: P
    # The provider serves this key's instance alone (hardware, external): it may want to know who
    # is asking (`invocation`).
    per_instance: bool = False

    def invocation(self, ctx: RequestContext, action: KmsAction) -> Invocation | None:
        """Who is asking, for a per-instance provider's own audit (the XKS proxy); None otherwise."""
        if not self.per_instance:
            return None
        return Invocation(ctx.principal.arn, self.key.arn, action.value, ctx.request_id)


class KeyOperations:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        clock: Clock,
        generation: Generation,
        cache_ttl: float,
        service_keys: ServiceKeyService,
    ) -> None:
        self._db = db
        self._keys = keys
        self._clock = clock
        self._service_keys = service_keys
        self._versions: TtlCache[str, MaterialRef] = TtlCache(cache_ttl, generation, name="versions")
        # The resources requests name, by (key id, version id): a key id (a version id) always names
        # the same key, so each is made once rather than on every request of a hot key.
        self._resources: dict[tuple[str, str | None], Resource] = {}
        # Shared providers (software) by (instance, capability): an instance's kind never changes, nor
        # does what the registry offers for it, so each is looked up once (failures are not kept).
        # Per-instance providers (hardware, external) are asked of the registry every time.
        self._offered: dict[tuple[str | None, Capability[Any]], Any] = {}

    # -- resolve ----------------------------------------------------------------------------------
    def key(self, ctx: RequestContext, key_ref: str) -> Key:
        """The key `key_ref` names. An integrated service naming its own service key that does not
        exist yet gets it made first (F1.1): the one place a key is made on first use."""
        try:
            return self._keys.resolve(ctx, key_ref)
        except AliasNotFound:
            service = own_service_alias(ctx, key_ref)
            if service is None:
                raise
            return self._service_keys.ensure(ctx, service).value

    def key_of_blob(self, ctx: RequestContext, key_id: str) -> Key:
        """The key a ciphertext's version belongs to. One the caller may not know of (another
        account's, sharing nothing with it) makes the blob answer as a blob naming no key we hold:
        InvalidCiphertext, as for a forged one."""
        key = self._keys.find(ctx, key_id)
        if key is None:
            raise InvalidCiphertext()
        return self._keys.in_region(ctx, key)

    # -- authorize and check ----------------------------------------------------------------------
    def prepare(
        self, ctx: RequestContext, key_or_ref: Key | str, action: KmsAction, need: Need[P]
    ) -> Target[P]:
        """Resolve (unless given the key), authorize `action`, check the key may do it now, and pick
        its provider. Errors after resolution name the key."""
        key = self.key(ctx, key_or_ref) if isinstance(key_or_ref, str) else key_or_ref
        # try/except rather than `acting_on`: free in Python 3.11 when nothing is raised, and every
        # cryptographic request passes here.
        try:
            authorize(ctx, action, key)
            ensure_usable(key.state)
            if key.material_expire_time is not None:  # imported material: usable until it expires
                ensure_material_current(key.material_expire_time, self._clock.now().timestamp())
            rule = SPEC_RULES[key.spec]
            usage = need.usage
            if rule.symmetric is not need.symmetric or (usage is not None and key.usage is not usage):
                need.check(action, key, rule)  # raises, saying what the action needs (or allows it)
            provider = self._offered.get((key.instance_id, need.capability))
            if provider is not None:
                return Target(key, rule, provider)
            provider = self._keys.provider(key, need.capability)
            if not self._keys.provider_is_shared(key):  # made again when its instance's settings change
                return Target(key, rule, provider, per_instance=True)
            self._offered[(key.instance_id, need.capability)] = provider
            return Target(key, rule, provider)
        except OpenKMSError as exc:
            exc.about(self.resource(key))  # made only here: a success names the version it used
            raise

    def resource(self, key: Key, version_id: str | None = None) -> Resource:
        """The key (and the version an operation used) as the outcome names it."""
        slot = (key.key_id, version_id)
        found = self._resources.get(slot)
        if found is None:
            if len(self._resources) >= _RESOURCES_KEPT:
                self._resources.clear()
            found = self._resources[slot] = key_resource(key, version_id)
        return found

    # -- versions ---------------------------------------------------------------------------------
    def material(self, version_id: str) -> MaterialRef | None:
        """The reference to a version's material, from the cache; None if no such version exists."""
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        with self._db.reading() as uow:
            stored = uow.keys.version(version_id)
            key = None if stored is None else uow.keys.get(stored.version.key_id)
        if stored is None or key is None:
            return None
        ref = MaterialRef(key.key_id, stored.version.version_id, key.spec, stored.wrapped_material)
        self._versions.put(version_id, ref)
        return ref

    def primary(self, key: Key) -> MaterialRef:
        """The version new ciphertexts are made with."""
        version_id = key.primary_version_id
        ref = None if version_id is None else self.material(version_id)
        if ref is None:
            raise UnsupportedOperation("The key has no key material.")
        return ref

    def version(self, key: Key, version_id: str) -> MaterialRef:
        """The named version of the key; KeyVersionNotFound if the key has no such version."""
        ref = self.material(version_id)
        if ref is None or ref.key_id != key.key_id:
            raise KeyVersionNotFound(f"The key {key.key_id} has no version {version_id!r}.")
        return ref
