"""Hardware and external key management instances: made, changed and health-checked by the operator.

Owns `KeyStoreService`. An instance's non-secret settings are checked against its kind's names
(`SETTING_NAMES`); the provider the registry makes from them must come up and answer a health check
before the instance is written (a wrong module path, token, PIN source, proxy endpoint or credential
is refused at once, and nothing is stored). An external instance's SigV4 secret key is stored sealed
by the keystore, bound to the instance id, and unsealed only by the provider factory (`secret`). The
health job (`check_all`) records each backend's state, shown by GetKmsInstance and the console.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from openkms.clock import Clock
from openkms.domain.instance import Instance, InstanceHealth
from openkms.errors import InstanceNotFound, InvalidArgument, MissingParameter, OpenKMSError
from openkms.keystore import Keystore
from openkms.metrics import KEY_STORE_BACKENDS
from openkms.providers.base import HEALTH_CHECK
from openkms.providers.registry import ProviderRegistry, close_provider
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.secret import SecretBytes
from openkms.service import ids
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome
from openkms.types import InstanceId, InstanceKind

__all__ = ["SETTING_NAMES", "KeyStoreService", "check_settings", "instance_secret"]

# The settings each kind takes, and which of them must be given (a dash: one of the pair).
SETTING_NAMES: Final[dict[InstanceKind, frozenset[str]]] = {
    InstanceKind.HARDWARE: frozenset({"module", "token_label", "token_serial", "pin_source", "sessions"}),
    InstanceKind.EXTERNAL: frozenset(
        {"endpoint", "path_prefix", "access_key_id", "ca_file", "allow_http", "timeout_seconds"}
    ),
}
_REQUIRED: Final[dict[InstanceKind, tuple[str, ...]]] = {
    InstanceKind.HARDWARE: ("module", "token_label-token_serial", "pin_source"),
    InstanceKind.EXTERNAL: ("endpoint", "path_prefix", "access_key_id"),
}
_SECRET_BINDING: Final = ("instance-secret", "v1")


def instance_secret_binding(instance_id: str) -> tuple[str, str, str]:
    """What an instance's sealed secret is bound to (the keyring's rewrap binds it the same way)."""
    return (instance_id, *_SECRET_BINDING)


def instance_secret(db: Database, keystore: Keystore, instance_id: InstanceId) -> SecretBytes | None:
    """An instance's unsealed secret (the registry's `SecretSource`): for provider factories only."""
    with db.unit_of_work() as uow:
        sealed = uow.instances.sealed_secret(instance_id)
    return None if sealed is None else keystore.unwrap(*instance_secret_binding(instance_id), sealed)


class KeyStoreService:
    def __init__(self, db: Database, keystore: Keystore, providers: ProviderRegistry, clock: Clock) -> None:
        self._db = db
        self._keystore = keystore
        self._providers = providers
        self._clock = clock

    def create(
        self,
        ctx: RequestContext,
        kind: InstanceKind,
        name: str,
        settings: Mapping[str, str],
        secret: SecretBytes | None = None,
    ) -> Outcome[Instance]:
        """A new hardware or external instance in the caller's account and region, written only once a
        provider made from its settings answered a health check."""
        checked = check_settings(kind, settings, secret)
        instance_id = ids.new_instance_id(ctx.region_id)
        now = self._clock.now()
        account = ctx.principal.account_id
        draft = Instance(instance_id, account, ctx.region_id, kind, name or instance_id, now, 0, checked)
        health = self._probe(draft, secret)
        sealed = (
            None if secret is None else self._keystore.wrap(*instance_secret_binding(instance_id), secret)
        )
        with self._db.unit_of_work(write=True) as uow:
            uow.instances.add(instance_id, account, ctx.region_id, kind, draft.name, now, checked, sealed)
            uow.instances.record_health(instance_id, health)
        return Outcome(replace(draft, health=health), Resource.instance(ctx.region_id, account, instance_id))

    def update(
        self,
        ctx: RequestContext,
        instance_id: str,
        settings: Mapping[str, str],
        secret: SecretBytes | None = None,
    ) -> Outcome[Instance]:
        """Change some settings (and the secret) of an instance; the new ones must pass a health check
        first. The revision grows, so every worker makes its provider again."""
        current = self._own(ctx, instance_id)
        checked = check_settings(current.kind, {**current.settings, **settings}, secret, secret_stored=True)
        changed = replace(current, settings=checked, revision=current.revision + 1)
        health = self._probe(changed, self._stored_secret(current.instance_id) if secret is None else secret)
        with self._db.unit_of_work(write=True) as uow:
            sealed = (
                uow.instances.sealed_secret(instance_id)
                if secret is None
                else self._keystore.wrap(*instance_secret_binding(current.instance_id), secret)
            )
            uow.instances.change_settings(instance_id, checked, sealed)
            uow.instances.record_health(instance_id, health)
        resource = Resource.instance(current.region_id, current.account_id, current.instance_id)
        return Outcome(replace(changed, health=health), resource)

    def check_all(self) -> list[Instance]:
        """The health job: ask every hardware and external instance's backend how it is, and record it."""
        with self._db.unit_of_work() as uow:
            found = uow.instances.of_kind((InstanceKind.HARDWARE, InstanceKind.EXTERNAL))
        checked: list[Instance] = []
        for instance in found:
            try:
                health = InstanceHealth(
                    True,
                    self._providers.for_instance(instance, HEALTH_CHECK).check_health(),
                    self._clock.now(),
                )
            except OpenKMSError as exc:
                health = InstanceHealth(False, exc.message, self._clock.now())
            with self._db.unit_of_work(write=True) as uow:
                uow.instances.record_health(instance.instance_id, health)
            checked.append(replace(instance, health=health))
        for kind in (InstanceKind.HARDWARE, InstanceKind.EXTERNAL):
            ours = [i for i in checked if i.kind == kind]
            healthy = sum(1 for i in ours if i.health is not None and i.health.ok)
            KEY_STORE_BACKENDS.labels(kind.value, "ok").set(healthy)
            KEY_STORE_BACKENDS.labels(kind.value, "unavailable").set(len(ours) - healthy)
        return checked

    # -- helpers ----------------------------------------------------------------------------------
    def _own(self, ctx: RequestContext, instance_id: str) -> Instance:
        with self._db.unit_of_work() as uow:
            instance = uow.instances.get(instance_id)
        if (
            instance is None
            or instance.account_id != ctx.principal.account_id
            or instance.kind not in SETTING_NAMES
        ):
            raise InstanceNotFound(f"No hardware or external instance {instance_id!r} in this account.")
        return instance

    def _stored_secret(self, instance_id: InstanceId) -> SecretBytes | None:
        return instance_secret(self._db, self._keystore, instance_id)

    def _probe(self, instance: Instance, secret: SecretBytes | None) -> InstanceHealth:
        """Make a provider from these settings and ask it how it is. Any failure is the operator's to
        fix: it is raised, and nothing is written."""
        provider, health = self._providers.probe(instance, secret, HEALTH_CHECK)
        try:
            return InstanceHealth(True, health.check_health(), self._clock.now())
        finally:
            close_provider(provider)


def check_settings(
    kind: InstanceKind,
    settings: Mapping[str, str],
    secret: SecretBytes | None,
    *,
    secret_stored: bool = False,
) -> dict[str, str]:
    """The settings of a `kind` instance, checked by name; InvalidArgument / MissingParameter."""
    names = SETTING_NAMES.get(kind)
    if names is None:
        raise InvalidArgument(f"Instances of kind {kind} take no settings.", parameter="Kind")
    unknown = sorted(set(settings) - names)
    if unknown:
        raise InvalidArgument(
            f"Unknown setting(s) {', '.join(unknown)} for a {kind} instance; "
            f"known: {', '.join(sorted(names))}.",
            parameter="Settings",
        )
    for required in _REQUIRED[kind]:
        if not any(settings.get(name) for name in required.split("-")):
            raise MissingParameter(required.replace("-", " or "))
    if kind is InstanceKind.EXTERNAL and secret is None and not secret_stored:
        raise MissingParameter("secret_access_key")
    return {name: str(value) for name, value in settings.items() if value is not None and value != ""}
