"""Key management use cases: create, describe, list, enable, disable. Also key resolution and the one
locked-write helper (`KeyService.locked`), shared with every other use case on keys.

Resolution only reads: it never creates a key (an integrated service's first use of its service key
is an explicit step of the key-operation pipeline, `service.key_ops`). It is also where another
account's key that shares nothing with the caller stops existing for that caller: every form of
reference answers it exactly as a missing key of that form, before any authorization, so no answer
confirms it exists or names its account (`authorization.may_see`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from openkms.clock import Clock
from openkms.domain.instance import Instance
from openkms.domain.key import Key, KeyFilter, KeyVersion
from openkms.domain.lifecycle import KeyEvent, transition
from openkms.domain.names import check_description, parse_rotation_interval
from openkms.domain.specs import SpecRule, parse_spec, parse_usage
from openkms.errors import (
    AliasNotFound,
    InstanceNotFound,
    InvalidArgument,
    KeyNotFound,
    MissingParameter,
    QuotaExceeded,
    UnsupportedOperation,
)
from openkms.node.generation import Generation
from openkms.policy.actions import KmsAction
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.key_policy import shared_instance_key_policy
from openkms.providers.base import Capability, NewVersion
from openkms.providers.registry import ProviderRegistry
from openkms.repository.database import Database, UnitOfWork
from openkms.resource import Resource
from openkms.service import ids
from openkms.service.authorization import authorize, may_see
from openkms.service.backend_material import NewMaterial
from openkms.service.cache import TtlCache
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome, acting_on
from openkms.service.sharing import InstanceAccess
from openkms.types import (
    CreatorType,
    InstanceKind,
    KeyId,
    KeyState,
    KeyUsage,
    KeyVersionId,
    Origin,
    ProtectionLevel,
)

P = TypeVar("P")

_KEY_ARN = re.compile(r"^acs:kms:(?P<region>[^:]*):(?P<account>\d+):key/(?P<key>.+)\Z")
_EXTERNAL_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ALIAS_ARN = re.compile(r"^acs:kms:(?P<region>[^:]*):(?P<account>\d+):(?P<alias>alias/.+)\Z")


@dataclass(frozen=True, slots=True)
class CreateKeyRequest:
    key_spec: str | None = None
    key_usage: str | None = None
    origin: str | None = None
    protection_level: str | None = None
    description: str = ""
    instance_id: str | None = None
    policy: str | None = None  # a key policy document; None: the default policy
    # Automatic rotation (interval as given, e.g. "30d") and tags, set at creation.
    enable_automatic_rotation: bool = False
    rotation_interval: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # OpenKMS extensions (no field of the official CreateKeyRequest carries them; docs/hsm.md,
    # docs/external-keys.md): usages besides KeyUsage for a hardware key pair (F2.2), and the id of
    # the key in the external key manager for a key of an external instance (F1.4).
    additional_usages: str | None = None
    external_key_id: str | None = None


def key_resource(key: Key, version_id: str | None = None) -> Resource:
    """The key as the audit record names it (by its own ARN), with the version a request used."""
    return Resource.key(key.region_id, key.account_id, key.key_id, version_id)


# Keys an instance may hold (setting `key_quota`), pending deletion included, as GetKmsInstance's KeyNum.
DEFAULT_KEY_QUOTA = 100_000


class KeyService:
    def __init__(
        self,
        db: Database,
        providers: ProviderRegistry,
        clock: Clock,
        generation: Generation,
        cache_ttl: float,
        access: InstanceAccess | None = None,
        *,
        key_quota: int = DEFAULT_KEY_QUOTA,
    ) -> None:
        self._db = db
        self._access = access
        self._key_quota = key_quota
        self._providers = providers
        self.instance_cache: TtlCache[str, Instance] = TtlCache(cache_ttl, generation, name="instances")
        self._clock = clock
        self._generation = generation
        self.key_cache: TtlCache[str, Key] = TtlCache(cache_ttl, generation, name="keys")
        self.alias_cache: TtlCache[tuple[str, str, str], KeyId] = TtlCache(
            cache_ttl, generation, name="aliases"
        )

    # -- resolution -------------------------------------------------------------------------------
    def resolve(self, ctx: RequestContext, key_ref: str) -> Key:
        """A key by id, ARN, alias name or alias ARN. KeyNotFound (AliasNotFound) if absent, and the
        same, word for word, for a key of another account that shares nothing with the caller
        (`authorization.may_see`) or that the ARN names under another account than its own."""
        key_id, named_account = self._key_id_of(ctx, key_ref)
        key = self.find(ctx, key_id)
        if key is None or (named_account is not None and key.account_id != named_account):
            raise KeyNotFound()
        return self.in_region(ctx, key)

    def find(self, ctx: RequestContext, key_id: str) -> Key | None:
        """The key with this id if the caller may know it exists (`authorization.may_see`), in any
        region; None otherwise, whether it is missing or another account's key."""
        key = self.key_cache.get(key_id)
        if key is None:
            with self._db.reading() as uow:
                key = uow.keys.get(key_id)
            if key is None:
                return None
            self.key_cache.put(key_id, key)
        return key if may_see(ctx, key) else None

    @staticmethod
    def in_region(ctx: RequestContext, key: Key) -> Key:
        """The key, if it lives in the caller's region; KeyNotFound otherwise."""
        if key.region_id != ctx.region_id:
            raise KeyNotFound(f"The specified Key is not found in region {ctx.region_id}.")
        return key

    def instance_of(self, key: Key) -> Instance | None:
        """The instance whose key store holds the key's material; None for the default key store
        (keys outside any instance, held in software)."""
        if key.instance_id is None:
            return None
        instance = self.instance_cache.get(key.instance_id)
        if instance is None:
            with self._db.reading() as uow:
                instance = uow.instances.get(key.instance_id)
            if instance is None:
                raise InstanceNotFound(f"The KMS instance of {key.key_id} is not found.")
            self.instance_cache.put(key.instance_id, instance)
        return instance

    def kind_of(self, key: Key) -> InstanceKind:
        """The kind of key store that holds the key's material (software for the default keys)."""
        instance = self.instance_of(key)
        return InstanceKind.SOFTWARE if instance is None else instance.kind

    def provider(self, key: Key, capability: Capability[P]) -> P:
        """The provider that holds the key's material (its instance's), as `capability`;
        UnsupportedOperation if this server has no such provider or it lacks the capability."""
        return self._providers.for_instance(self.instance_of(key), capability)

    def provider_is_shared(self, key: Key) -> bool:
        """Whether the key's provider serves its whole kind (so it may be kept per instance id)."""
        return self._providers.shared(self.kind_of(key))

    def _alias_target(self, ctx: RequestContext, name: str) -> KeyId:
        cache_key = (ctx.principal.account_id, ctx.region_id, name)
        key_id = self.alias_cache.get(cache_key)
        if key_id is None:
            with self._db.reading() as uow:
                alias = uow.aliases.get(ctx.principal.account_id, ctx.region_id, name)
            if alias is None:
                raise AliasNotFound()
            key_id = alias.key_id
            self.alias_cache.put(cache_key, key_id)
        return key_id

    def _key_id_of(self, ctx: RequestContext, key_ref: str) -> tuple[str, str | None]:
        """The key id a reference names, and the account a key ARN names (None for other forms)."""
        if key_ref.startswith("alias/"):
            return self._alias_target(ctx, key_ref), None
        if key_ref.startswith("acs:"):
            match = _KEY_ARN.match(key_ref)
            if match is None:
                alias_match = _ALIAS_ARN.match(key_ref)
                if alias_match is not None:
                    if (alias_match["region"], alias_match["account"]) != (
                        ctx.region_id,
                        ctx.principal.account_id,
                    ):
                        raise AliasNotFound()
                    return self._alias_target(ctx, alias_match["alias"]), None
                raise InvalidArgument(f"{key_ref!r} is not a key ARN.", parameter="KeyId")
            if match["region"] != ctx.region_id:
                raise KeyNotFound(f"The specified Key is not found in region {ctx.region_id}.")
            return match["key"], match["account"]
        return key_ref, None

    # -- the one locked write -----------------------------------------------------------------------
    @contextmanager
    def locked(
        self, ctx: RequestContext, key_ref: str, action: KmsAction
    ) -> Iterator[tuple[UnitOfWork, Key]]:
        """Resolve, lock the key row in a write unit of work, re-read it, authorize `action`, and let
        the caller change it; then drop the key caches on every worker of the node.

        Every state change on a key comes through here, so concurrent changes of one key serialise
        (PostgreSQL row lock; SQLite serialises writers at BEGIN IMMEDIATE) and each sees the other's
        result. Errors raised after the key was found name it (`OpenKMSError.resource`)."""
        with self.holding(ctx, key_ref, action) as (uow, key):
            yield uow, key
        self.changed(key.key_id)

    @contextmanager
    def holding(
        self, ctx: RequestContext, key_ref: str, action: KmsAction
    ) -> Iterator[tuple[UnitOfWork, Key]]:
        """As `locked`, for a write that depends on the key's current state without changing the key
        (an import token): nothing cached about the key goes stale, so no cache is dropped."""
        key_id, named_account = self._key_id_of(ctx, key_ref)
        with self._db.unit_of_work(write=True) as uow:
            uow.lifecycle.lock_key(KeyId(key_id))
            key = uow.keys.get(key_id)
            if (
                key is None
                or not may_see(ctx, key)
                or (named_account is not None and key.account_id != named_account)
                or key.region_id != ctx.region_id
            ):
                raise KeyNotFound()
            with acting_on(key_resource(key)):
                authorize(ctx, action, key)
                yield uow, key

    def changed(self, key_id: KeyId) -> None:
        """A key changed: every worker of the node drops its cached copy (generation bump)."""
        self.key_cache.discard(key_id)
        self._generation.bump()

    # -- use cases --------------------------------------------------------------------------------
    def create_key(self, ctx: RequestContext, request: CreateKeyRequest) -> Outcome[Key]:
        ctx.request_tags = dict(request.tags)  # policies may condition on them (acs:RequestTag/<key>)
        authorize(ctx, KmsAction.CREATE_KEY)
        check_description(request.description)
        origin = _parse_origin(request.origin)
        instance = self._instance(ctx, request.instance_id)
        kind = None if instance is None else instance.kind
        policy = request.policy
        if policy is None and instance is not None and instance.account_id != ctx.principal.account_id:
            policy = shared_instance_key_policy(ctx.principal.account_id, instance.account_id)
        rule = parse_spec(request.key_spec, kind)
        usage = parse_usage(request.key_usage, rule)
        additional = parse_additional_usages(request.additional_usages, rule, usage, kind)
        external_key_id = parse_external_key_id(request.external_key_id, kind)
        protection = _parse_protection_level(request.protection_level, kind)
        if request.policy is not None:
            parse_policy(request.policy, PolicyKind.KEY)  # refuse a malformed policy before anything exists
        interval = creation_rotation_interval(
            request.enable_automatic_rotation, request.rotation_interval, rule
        )
        imported = origin is Origin.EXTERNAL
        if imported and interval is not None:
            raise UnsupportedOperation("Keys with imported material (Origin EXTERNAL) do not rotate.")
        if imported and kind is InstanceKind.EXTERNAL:
            raise UnsupportedOperation("Keys of an external instance cannot have imported material.")
        now = self._clock.now()
        key_id = ids.new_default_key_id() if kind is None else ids.new_instance_key_id(ctx.region_id)
        version_id = ids.new_version_id()
        key = Key(
            key_id=key_id,
            account_id=ctx.principal.account_id,
            region_id=ctx.region_id,
            instance_id=None if instance is None else instance.instance_id,
            spec=rule.spec,
            usage=usage,
            origin=origin,
            protection_level=protection,
            state=KeyState.PENDING_IMPORT if imported else KeyState.ENABLED,
            description=request.description,
            creator=ctx.principal.account_id,
            creator_type=CreatorType.USER,
            primary_version_id=None if imported else version_id,
            created_at=now,
            policy=policy,
            rotation_interval=interval,
            last_rotation_date=now,
            next_rotation_date=None if interval is None else now + timedelta(seconds=interval),
            additional_usages=additional,
            external_key_id=external_key_id,
        )
        if imported:  # no material until ImportKeyMaterial; the version id is reserved for it
            self._add_key(key, request.tags, version_id, None)
        else:
            new = NewVersion(key_id, version_id, rule.spec, (usage, *additional), external_key_id)
            with NewMaterial(self._providers, instance, new) as made:
                self._add_key(key, request.tags, version_id, made.stored)
                made.keep()
        return Outcome(key, key_resource(key, None if imported else version_id))

    def _add_key(
        self, key: Key, tags: Mapping[str, str], version_id: KeyVersionId, stored: bytes | None
    ) -> None:
        """Write a new key with its first version (or, without material, its import record reserving
        `version_id`) and its tags, in one transaction."""
        with self._db.unit_of_work(write=True) as uow:
            if self._access is not None:
                self._access.enforce(
                    uow, key.instance_id, key.key_id, key.account_id, key.policy, key.created_at
                )
            self._enforce_key_quota(uow, key.instance_id)
            uow.keys.add(key, customer_master_key=key.instance_id is None)
            if stored is None:
                uow.imports.add_record(key.key_id, version_id)
            else:
                uow.keys.add_version(KeyVersion(key.key_id, version_id, key.created_at), 1, stored)
            if tags:
                uow.tags.put(key.key_id, tags)

    @property
    def quota(self) -> int:
        """The keys an instance may hold (`key_quota`): GetKmsInstance's KeyNum."""
        return self._key_quota

    def _enforce_key_quota(self, uow: UnitOfWork, instance_id: str | None) -> None:
        """Refuse a key beyond its instance's quota; keys pending deletion count until destroyed.
        The instance row is locked first, so two creators at the limit cannot both pass."""
        if instance_id is None:
            return  # the region's customer master key belongs to no instance
        uow.sharing.lock_instance(instance_id)
        instance = uow.instances.get(instance_id)
        if instance is not None and instance.key_count >= self._key_quota:
            raise QuotaExceeded(
                f"The instance {instance_id} holds {instance.key_count} keys, its quota (key_quota "
                f"{self._key_quota}); delete keys or ask the operator to raise it."
            )

    def _instance(self, ctx: RequestContext, instance_id: str | None) -> Instance | None:
        """The instance a key is created in: the caller's own, or one shared with its account (F4.1)."""
        if instance_id is None:
            return None
        with self._db.unit_of_work() as uow:
            instance = uow.instances.get(instance_id)
            shared = instance is not None and uow.sharing.is_shared(instance_id, ctx.principal.account_id)
        # Another account's instance that is not shared with the caller answers as a missing one,
        # as GetKmsInstance does: no answer reveals that it exists, or whose it is.
        mine = instance is not None and (instance.account_id == ctx.principal.account_id or shared)
        if instance is None or not mine or instance.region_id != ctx.region_id:
            raise InstanceNotFound(f"The KMS instance {instance_id!r} is not found in {ctx.region_id}.")
        return instance

    def describe_key(self, ctx: RequestContext, key_ref: str) -> Outcome[Key]:
        key = self.read(ctx, key_ref, KmsAction.DESCRIBE_KEY)
        return Outcome(key, key_resource(key))

    def read(self, ctx: RequestContext, key_ref: str, action: KmsAction) -> Key:
        """Resolve a key and authorize `action` on it (no change follows, or one under `locked`);
        a denial names the key."""
        key = self.resolve(ctx, key_ref)
        with acting_on(key_resource(key)):
            authorize(ctx, action, key)
        return key

    def list_keys(
        self, ctx: RequestContext, key_filter: KeyFilter, page_number: int, page_size: int
    ) -> Outcome[tuple[list[Key], int]]:
        authorize(ctx, KmsAction.LIST_KEYS)
        with self._db.unit_of_work() as uow:
            found = uow.keys.page(
                ctx.principal.account_id,
                ctx.region_id,
                key_filter,
                (page_number - 1) * page_size,
                page_size,
            )
        return Outcome(found)

    def enable_key(self, ctx: RequestContext, key_ref: str) -> Outcome[None]:
        return self._change_state(ctx, key_ref, KeyEvent.ENABLE, KmsAction.ENABLE_KEY)

    def disable_key(self, ctx: RequestContext, key_ref: str) -> Outcome[None]:
        return self._change_state(ctx, key_ref, KeyEvent.DISABLE, KmsAction.DISABLE_KEY)

    def _change_state(
        self, ctx: RequestContext, key_ref: str, event: KeyEvent, action: KmsAction
    ) -> Outcome[None]:
        with self.locked(ctx, key_ref, action) as (uow, key):
            refuse_service_key(ctx, key, action)
            new_state = transition(key.state, event)
            if new_state is not key.state:
                uow.keys.set_state(key.key_id, new_state)
        return Outcome(None, key_resource(key))


def refuse_service_key(ctx: RequestContext, key: Key, action: str) -> None:
    """Users cannot disable, delete or re-alias a service key; only its service (or the server) may."""
    if key.creator_type is CreatorType.SERVICE and ctx.principal.is_user:
        raise UnsupportedOperation(
            f"{key.key_id} is a service key of {key.creator}; users cannot call {action} on it."
        )


def creation_rotation_interval(enabled: bool, raw: str | None, rule: SpecRule) -> int | None:
    """CreateKey's EnableAutomaticRotation/RotationInterval as seconds, or None for no rotation."""
    if not enabled:
        if raw:
            parse_rotation_interval(raw)  # a bad value is refused even when rotation is off
        return None
    if not rule.symmetric:
        raise UnsupportedOperation("Automatic rotation is only available for symmetric keys.")
    if not raw:
        raise MissingParameter("RotationInterval")
    return parse_rotation_interval(raw)


def parse_additional_usages(
    raw: str | None, rule: SpecRule, usage: KeyUsage, kind: InstanceKind | None
) -> tuple[KeyUsage, ...]:
    """The OpenKMS extension OpenKMSAdditionalKeyUsages: usages besides KeyUsage, comma-separated
    (F2.2). Only hardware key pairs carry them; each must be a usage the spec offers."""
    if raw is None or raw == "":
        return ()
    if kind is not InstanceKind.HARDWARE:
        raise UnsupportedOperation("Additional key usages are only for keys of a hardware instance.")
    extra: list[KeyUsage] = []
    for item in (part.strip() for part in raw.split(",")):
        found = next((offered for offered in rule.usages if offered.value == item), None)
        if found is None:
            raise InvalidArgument(
                f"{item!r} is not a usage of {rule.spec}; choose among {', '.join(rule.usages)}.",
                parameter="OpenKMSAdditionalKeyUsages",
            )
        if found is not usage and found not in extra:
            extra.append(found)
    return tuple(extra)


def parse_external_key_id(raw: str | None, kind: InstanceKind | None) -> str | None:
    """The OpenKMS extension OpenKMSExternalKeyId: required for, and only for, an external instance's
    keys; 1-128 characters of letters, digits, '-', '_' and '.' (the XKS proxy API's key id)."""
    if kind is not InstanceKind.EXTERNAL:
        if raw:
            raise UnsupportedOperation("An external key id is only for keys of an external instance.")
        return None
    if not raw:
        raise MissingParameter("OpenKMSExternalKeyId")
    if not _EXTERNAL_KEY_ID.fullmatch(raw):
        raise InvalidArgument(
            "OpenKMSExternalKeyId must be 1-128 letters, digits, '-', '_' or '.'.",
            parameter="OpenKMSExternalKeyId",
        )
    return raw


def _parse_origin(raw: str | None) -> Origin:
    if raw is None or raw == "":
        return Origin.ALIYUN_KMS
    if raw == Origin.ALIYUN_KMS.value:
        return Origin.ALIYUN_KMS
    if raw == Origin.EXTERNAL.value:
        return Origin.EXTERNAL
    raise InvalidArgument(f"Origin {raw!r} is not Aliyun_KMS or EXTERNAL.", parameter="Origin")


def _parse_protection_level(raw: str | None, kind: InstanceKind | None) -> ProtectionLevel:
    if raw not in (None, "", ProtectionLevel.SOFTWARE.value, ProtectionLevel.HSM.value):
        raise InvalidArgument(f"ProtectionLevel {raw!r} is not SOFTWARE or HSM.", parameter="ProtectionLevel")
    # Inside an instance its kind decides, whatever is asked (Alibaba ignores the parameter there).
    if kind is InstanceKind.HARDWARE:
        return ProtectionLevel.HSM
    if kind is InstanceKind.EXTERNAL:
        return ProtectionLevel.EXTERNAL
    if raw in (None, "", ProtectionLevel.SOFTWARE.value):
        return ProtectionLevel.SOFTWARE
    if raw == ProtectionLevel.HSM.value:
        if kind is InstanceKind.SOFTWARE:
            # Alibaba ignores ProtectionLevel inside an instance: the instance kind decides.
            return ProtectionLevel.SOFTWARE
        raise UnsupportedOperation("ProtectionLevel HSM needs a hardware key management instance.")
    raise InvalidArgument(f"ProtectionLevel {raw!r} is not SOFTWARE or HSM.", parameter="ProtectionLevel")
