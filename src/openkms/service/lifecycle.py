"""Key lifecycle use cases: description, deletion protection, scheduled deletion and its cancellation,
key versions and rotation, and the two job steps (rotate a due key, destroy a key whose window passed).

Every change goes through the one locked write (`KeyService.locked`): the key row is locked in a write
unit of work, so concurrent calls on the same key serialise; then the key caches are dropped on every
worker of the node (generation bump).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from openkms.clock import Clock
from openkms.domain.key import Key, KeyVersion
from openkms.domain.lifecycle import KeyEvent, ensure_usable, transition
from openkms.domain.names import check_description, check_pending_window, parse_rotation_interval
from openkms.domain.specs import SPEC_RULES
from openkms.errors import (
    DeletionProtected,
    InvalidKeyState,
    KeyNotFound,
    KeyVersionNotFound,
    MissingParameter,
    UnsupportedOperation,
)
from openkms.policy.actions import KmsAction
from openkms.providers.base import NewVersion
from openkms.providers.registry import ProviderRegistry
from openkms.repository.database import Database, UnitOfWork
from openkms.service import ids
from openkms.service.backend_material import WRAPPING_KEY_SPEC, NewMaterial, destroy_in_backend
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, key_resource, refuse_service_key
from openkms.service.outcome import Outcome, acting_on
from openkms.service.sharing import InstanceAccess
from openkms.types import KeyId, KeyState, KeyVersionId, Origin


class LifecycleService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        providers: ProviderRegistry,
        clock: Clock,
        access: InstanceAccess | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._providers = providers
        self._clock = clock
        self._access = access

    # -- description, protection, deletion --------------------------------------------------------
    def update_description(self, ctx: RequestContext, key_ref: str, description: str) -> Outcome[None]:
        check_description(description)
        with self._keys.locked(ctx, key_ref, KmsAction.UPDATE_KEY_DESCRIPTION) as (uow, key):
            uow.lifecycle.set_description(key.key_id, description)
        return Outcome(None, key_resource(key))

    def set_deletion_protection(
        self, ctx: RequestContext, key_ref: str, enabled: bool, description: str
    ) -> Outcome[None]:
        check_description(description)
        with self._keys.locked(ctx, key_ref, KmsAction.SET_DELETION_PROTECTION) as (uow, key):
            if not enabled:
                refuse_service_key(ctx, key, KmsAction.SET_DELETION_PROTECTION)
            if enabled and key.state is KeyState.PENDING_DELETION:
                raise InvalidKeyState("Deletion protection cannot be turned on for a key pending deletion.")
            uow.lifecycle.set_deletion_protection(key.key_id, enabled, description if enabled else "")
        return Outcome(None, key_resource(key))

    def schedule_deletion(self, ctx: RequestContext, key_ref: str, pending_days: int) -> Outcome[datetime]:
        check_pending_window(pending_days)
        with self._keys.locked(ctx, key_ref, KmsAction.SCHEDULE_KEY_DELETION) as (uow, key):
            refuse_service_key(ctx, key, KmsAction.SCHEDULE_KEY_DELETION)
            if key.deletion_protection:
                raise DeletionProtected()
            state = transition(key.state, KeyEvent.SCHEDULE_DELETION)
            delete_date = self._clock.now() + timedelta(days=pending_days)
            uow.lifecycle.set_state_and_delete_date(key.key_id, state, delete_date)
        return Outcome(delete_date, key_resource(key))

    def cancel_deletion(self, ctx: RequestContext, key_ref: str) -> Outcome[None]:
        with self._keys.locked(ctx, key_ref, KmsAction.CANCEL_KEY_DELETION) as (uow, key):
            state = transition(key.state, KeyEvent.CANCEL_DELETION)
            if key.origin is Origin.EXTERNAL and uow.lifecycle.count_versions(key.key_id) == 0:
                state = KeyState.PENDING_IMPORT  # imported material: there is still none to use
            uow.lifecycle.set_state_and_delete_date(key.key_id, state, None)
        return Outcome(None, key_resource(key))

    # -- versions and rotation --------------------------------------------------------------------
    def update_rotation_policy(
        self, ctx: RequestContext, key_ref: str, enabled: bool, interval_raw: str | None
    ) -> Outcome[None]:
        interval: int | None = None
        if enabled:
            if not interval_raw:
                raise MissingParameter("RotationInterval")
            interval = parse_rotation_interval(interval_raw)
        elif interval_raw:
            parse_rotation_interval(interval_raw)
        with self._keys.locked(ctx, key_ref, KmsAction.UPDATE_ROTATION_POLICY) as (uow, key):
            _ensure_rotatable(key)
            if key.state is KeyState.PENDING_DELETION:
                raise InvalidKeyState("The rotation policy of a key pending deletion cannot change.")
            next_rotation = None
            if interval is not None:
                last = key.last_rotation_date or key.created_at
                next_rotation = last + timedelta(seconds=interval)
            uow.lifecycle.set_rotation(key.key_id, interval, next_rotation)
        return Outcome(None, key_resource(key))

    def create_key_version(self, ctx: RequestContext, key_ref: str) -> Outcome[KeyVersion]:
        """A new primary version now (manual rotation)."""
        key = self._keys.read(ctx, key_ref, KmsAction.CREATE_KEY_VERSION)
        with acting_on(key_resource(key)):
            _ensure_rotatable(key, manual=True)
            ensure_usable(key.state)
            version = self._rotate(ctx, key, due_before=None)
            if version is None:  # pragma: no cover - a manual rotation always writes
                raise InvalidKeyState("The key changed while it was being rotated; try again.")
        return Outcome(version, key_resource(key, version.version_id))

    def rotate_if_due(self, ctx: RequestContext, key_id: KeyId) -> Outcome[KeyVersion | None]:
        """The rotation job's step for one key: rotate it if its NextRotationDate has passed."""
        with self._db.unit_of_work() as uow:
            key = uow.keys.get(key_id)
        if key is None:
            raise KeyNotFound()
        version = self._rotate(ctx, key, due_before=self._clock.now())
        version_id = None if version is None else version.version_id
        return Outcome(version, key_resource(key, version_id), acted=version is not None)

    def _rotate(self, ctx: RequestContext, current: Key, *, due_before: datetime | None) -> KeyVersion | None:
        version_id = ids.new_version_id()
        # Material is made outside the transaction; if the version is not written after all (not due,
        # lost a race, the commit failed), NewMaterial destroys what the backend made for it.
        new = NewVersion(
            current.key_id,
            version_id,
            current.spec,
            (current.usage, *current.additional_usages),
            current.external_key_id,
        )
        with NewMaterial(self._providers, self._keys.instance_of(current), new) as made:
            with self._keys.locked(ctx, current.key_id, KmsAction.CREATE_KEY_VERSION) as (uow, key):
                if due_before is not None and (
                    key.state is not KeyState.ENABLED
                    or key.next_rotation_date is None
                    or key.next_rotation_date > due_before
                ):
                    return None
                ensure_usable(key.state)
                now = self._clock.now()
                version = KeyVersion(key.key_id, version_id, now)
                next_rotation = (
                    None if key.rotation_interval is None else now + timedelta(seconds=key.rotation_interval)
                )
                seq = uow.lifecycle.next_seq(key.key_id)
                if not uow.lifecycle.promote(
                    version, seq, made.stored, key.primary_version_id, next_rotation
                ):
                    return None
            made.keep()
        return version

    def describe_key_version(self, ctx: RequestContext, key_ref: str, version_id: str) -> Outcome[KeyVersion]:
        key = self._keys.read(ctx, key_ref, KmsAction.DESCRIBE_KEY_VERSION)
        with self._db.unit_of_work() as uow:
            stored = uow.keys.version(version_id)
        if stored is None or stored.version.key_id != key.key_id:
            raise KeyVersionNotFound().about(key_resource(key))
        return Outcome(stored.version, key_resource(key, stored.version.version_id))

    def list_key_versions(
        self, ctx: RequestContext, key_ref: str, page_number: int, page_size: int
    ) -> Outcome[tuple[list[KeyVersion], int]]:
        key = self._keys.read(ctx, key_ref, KmsAction.LIST_KEY_VERSIONS)
        with self._db.unit_of_work() as uow:
            total = uow.lifecycle.count_versions(key.key_id)
            found = uow.lifecycle.versions_page(key.key_id, (page_number - 1) * page_size, page_size)
        return Outcome((found, total), key_resource(key))

    # -- jobs -------------------------------------------------------------------------------------
    def due_for_rotation(self, limit: int = 100) -> list[Key]:
        with self._db.unit_of_work() as uow:
            found = [
                uow.keys.get(key_id) for key_id in uow.lifecycle.due_for_rotation(self._clock.now(), limit)
            ]
        return [key for key in found if key is not None]

    def due_for_deletion(self, limit: int = 100) -> list[Key]:
        with self._db.unit_of_work() as uow:
            found = [
                uow.keys.get(key_id) for key_id in uow.lifecycle.due_for_deletion(self._clock.now(), limit)
            ]
        return [key for key in found if key is not None]

    def destroy_if_due(self, ctx: RequestContext, key_id: KeyId) -> Outcome[bool]:
        """The deletion job's step for one key: destroy it if its DeleteDate has passed.

        The key row, every version's wrapped material, its aliases and tags go in one transaction;
        then the database files are scrubbed so no copy of the material survives (P10); if a reader keeps
        the SQLite WAL busy, the scrub stays pending and the job runner retries it.
        """
        destroyed: list[KeyVersionId] | None = None
        try:
            # Authorized as the permission that asked for it.
            with self._keys.locked(ctx, key_id, KmsAction.SCHEDULE_KEY_DELETION) as (uow, key):
                now = self._clock.now()
                if (
                    key.state is KeyState.PENDING_DELETION
                    and key.delete_date is not None
                    and key.delete_date <= now
                ):
                    if self._access is not None:
                        # Its grants to other accounts end with it: their quota units start returning (F4.3).
                        self._access.enforce(uow, key.instance_id, key.key_id, key.account_id, None, now)
                    self._destroy_in_backend(uow, key)
                    destroyed = uow.lifecycle.destroy(key.key_id)
        except KeyNotFound:
            return Outcome(False, acted=False)  # another node destroyed it first
        if destroyed is None:
            return Outcome(False, key_resource(key), acted=False)
        for version_id in destroyed:
            self._providers.forget(version_id)
        self._db.scrub()
        return Outcome(True, key_resource(key))

    def _destroy_in_backend(self, uow: UnitOfWork, key: Key) -> None:
        """An HSM's objects of the key go first: its versions, and the wrapping keys of its import tokens."""
        instance = self._keys.instance_of(key)
        stored = [(v.version.version_id, v.wrapped_material) for v in uow.keys.versions(key.key_id)]
        destroy_in_backend(self._providers, instance, key.key_id, key.spec, stored)
        wrapping = [(KeyVersionId(token), held) for token, held in uow.imports.live_wrapping_keys(key.key_id)]
        destroy_in_backend(self._providers, instance, key.key_id, WRAPPING_KEY_SPEC, wrapping)


def _ensure_rotatable(key: Key, *, manual: bool = False) -> None:
    """Automatic rotation is for symmetric keys (F3.4); CreateKeyVersion also makes a new key pair."""
    rule = SPEC_RULES.get(key.spec)
    if rule is None or (not rule.symmetric and not manual):
        raise UnsupportedOperation("Only symmetric keys rotate automatically; use CreateKeyVersion.")
    if key.origin is not Origin.ALIYUN_KMS:
        raise UnsupportedOperation("Keys with imported material do not rotate.")
