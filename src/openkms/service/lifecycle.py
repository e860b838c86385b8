"""Key lifecycle use cases: description, deletion protection, scheduled deletion and its cancellation,
key versions and rotation, and the two job steps (rotate a due key, destroy a key whose window passed).

Every change runs in one write unit of work that first locks the key row, so concurrent calls on the
same key serialise; then the key caches are dropped on every worker of the node (generation bump).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from openkms.node.generation import Generation
from openkms.providers.base import CryptoProvider
from openkms.repository.database import Database, UnitOfWork
from openkms.service import ids
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.service.keys import KeyService, new_material, refuse_service_key
from openkms.service.sharing import InstanceAccess
from openkms.types import KeyId, KeyState, KeyVersionId, Origin, ProtectionLevel


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of one rotation attempt."""

    version: KeyVersion | None  # None: nothing was written (not due, or another rotation won)


class LifecycleService:
    def __init__(
        self,
        db: Database,
        keys: KeyService,
        provider: CryptoProvider,
        clock: Clock,
        generation: Generation,
        access: InstanceAccess | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._provider = provider
        self._clock = clock
        self._generation = generation
        self._access = access

    # -- the shared write pipeline ----------------------------------------------------------------
    @contextmanager
    def _locked(self, ctx: RequestContext, key_ref: str, action: str) -> Iterator[tuple[UnitOfWork, Key]]:
        key_id = KeyId(self._keys.key_id_of(ctx, key_ref))
        with self._db.unit_of_work(write=True) as uow:
            uow.lifecycle.lock_key(key_id)
            key = uow.keys.get(key_id)
            if key is None or key.region_id != ctx.region_id:
                raise KeyNotFound()
            ctx.touched(key.key_id)
            authorize(ctx, action, key)
            yield uow, key
        self._changed(key.key_id)

    def _changed(self, key_id: KeyId) -> None:
        self._keys.key_cache.discard(key_id)
        self._generation.bump()

    # -- description, protection, deletion --------------------------------------------------------
    def update_description(self, ctx: RequestContext, key_ref: str, description: str) -> None:
        check_description(description)
        with self._locked(ctx, key_ref, "UpdateKeyDescription") as (uow, key):
            uow.lifecycle.set_description(key.key_id, description)

    def set_deletion_protection(
        self, ctx: RequestContext, key_ref: str, enabled: bool, description: str
    ) -> None:
        check_description(description)
        with self._locked(ctx, key_ref, "SetDeletionProtection") as (uow, key):
            if not enabled:
                refuse_service_key(ctx, key, "SetDeletionProtection")
            if enabled and key.state is KeyState.PENDING_DELETION:
                raise InvalidKeyState("Deletion protection cannot be turned on for a key pending deletion.")
            uow.lifecycle.set_deletion_protection(key.key_id, enabled, description if enabled else "")

    def schedule_deletion(self, ctx: RequestContext, key_ref: str, pending_days: int) -> datetime:
        check_pending_window(pending_days)
        with self._locked(ctx, key_ref, "ScheduleKeyDeletion") as (uow, key):
            refuse_service_key(ctx, key, "ScheduleKeyDeletion")
            if key.deletion_protection:
                raise DeletionProtected()
            state = transition(key.state, KeyEvent.SCHEDULE_DELETION)
            delete_date = self._clock.now() + timedelta(days=pending_days)
            uow.lifecycle.set_state_and_delete_date(key.key_id, state, delete_date)
        return delete_date

    def cancel_deletion(self, ctx: RequestContext, key_ref: str) -> None:
        with self._locked(ctx, key_ref, "CancelKeyDeletion") as (uow, key):
            state = transition(key.state, KeyEvent.CANCEL_DELETION)
            if key.origin is Origin.EXTERNAL and uow.lifecycle.count_versions(key.key_id) == 0:
                state = KeyState.PENDING_IMPORT  # imported material (issue 5): still none to use
            uow.lifecycle.set_state_and_delete_date(key.key_id, state, None)

    # -- versions and rotation --------------------------------------------------------------------
    def update_rotation_policy(
        self, ctx: RequestContext, key_ref: str, enabled: bool, interval_raw: str | None
    ) -> None:
        interval: int | None = None
        if enabled:
            if not interval_raw:
                raise MissingParameter("RotationInterval")
            interval = parse_rotation_interval(interval_raw)
        elif interval_raw:
            parse_rotation_interval(interval_raw)
        with self._locked(ctx, key_ref, "UpdateRotationPolicy") as (uow, key):
            _ensure_rotatable(key)
            if key.state is KeyState.PENDING_DELETION:
                raise InvalidKeyState("The rotation policy of a key pending deletion cannot change.")
            next_rotation = None
            if interval is not None:
                last = key.last_rotation_date or key.created_at
                next_rotation = last + timedelta(seconds=interval)
            uow.lifecycle.set_rotation(key.key_id, interval, next_rotation)

    def create_key_version(self, ctx: RequestContext, key_ref: str) -> KeyVersion:
        """A new primary version now (manual rotation)."""
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "CreateKeyVersion", key)
        _ensure_rotatable(key, manual=True)
        ensure_usable(key.state)
        version = self._rotate(ctx, key.key_id, due_before=None)
        if version is None:  # pragma: no cover - a manual rotation always writes
            raise InvalidKeyState("The key changed while it was being rotated; try again.")
        return version

    def rotate_if_due(self, ctx: RequestContext, key_id: KeyId) -> Rotation:
        """The rotation job's step for one key: rotate it if its NextRotationDate has passed."""
        return Rotation(self._rotate(ctx, key_id, due_before=self._clock.now()))

    def _rotate(
        self, ctx: RequestContext, key_id: KeyId, *, due_before: datetime | None
    ) -> KeyVersion | None:
        version_id = ids.new_version_id()
        with self._db.unit_of_work() as uow:
            current = uow.keys.get(key_id)
        if current is None:
            raise KeyNotFound()
        # Material is made outside the transaction: it is only wrapped bytes until the commit.
        wrapped = new_material(self._provider, key_id, version_id, current.spec)
        with self._db.unit_of_work(write=True) as uow:
            uow.lifecycle.lock_key(key_id)
            key = uow.keys.get(key_id)
            if key is None:
                raise KeyNotFound()
            authorize(ctx, "CreateKeyVersion", key)
            if due_before is not None and (
                key.state is not KeyState.ENABLED
                or key.next_rotation_date is None
                or key.next_rotation_date > due_before
            ):
                return None
            ensure_usable(key.state)
            now = self._clock.now()
            version = KeyVersion(key_id, version_id, now)
            next_rotation = (
                None if key.rotation_interval is None else now + timedelta(seconds=key.rotation_interval)
            )
            seq = uow.lifecycle.next_seq(key_id)
            if not uow.lifecycle.promote(version, seq, wrapped, key.primary_version_id, next_rotation):
                return None
        ctx.touched(key_id, version_id)
        self._changed(key_id)
        return version

    def describe_key_version(self, ctx: RequestContext, key_ref: str, version_id: str) -> KeyVersion:
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "DescribeKeyVersion", key)
        with self._db.unit_of_work() as uow:
            stored = uow.keys.version(version_id)
        if stored is None or stored.version.key_id != key.key_id:
            raise KeyVersionNotFound()
        ctx.touched(key.key_id, stored.version.version_id)
        return stored.version

    def list_key_versions(
        self, ctx: RequestContext, key_ref: str, page_number: int, page_size: int
    ) -> tuple[list[KeyVersion], int]:
        key = self._keys.resolve(ctx, key_ref)
        ctx.touched(key.key_id)
        authorize(ctx, "ListKeyVersions", key)
        with self._db.unit_of_work() as uow:
            total = uow.lifecycle.count_versions(key.key_id)
            found = uow.lifecycle.versions_page(key.key_id, (page_number - 1) * page_size, page_size)
        return found, total

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

    def destroy_if_due(self, ctx: RequestContext, key_id: KeyId) -> bool:
        """The deletion job's step for one key: destroy it if its DeleteDate has passed.

        The key row, every version's wrapped material, its aliases and tags go in one transaction;
        then the database files are scrubbed so no copy of the material survives (P10); if a reader keeps
        the SQLite WAL busy, the scrub stays pending and the job runner retries it.
        """
        destroyed: list[KeyVersionId] = []
        with self._db.unit_of_work(write=True) as uow:
            uow.lifecycle.lock_key(key_id)
            key = uow.keys.get(key_id)
            if key is None:
                return False
            ctx.touched(key.key_id)
            authorize(ctx, "ScheduleKeyDeletion", key)  # the permission that asked for it
            now = self._clock.now()
            if key.state is not KeyState.PENDING_DELETION or key.delete_date is None or key.delete_date > now:
                return False
            if self._access is not None:
                # Its grants to other accounts end with it: their quota units start returning (F4.3).
                self._access.enforce(uow, key.instance_id, key.key_id, key.account_id, None, now)
            destroyed = uow.lifecycle.destroy(key.key_id)
        for version_id in destroyed:
            self._provider.forget(version_id)
        self._changed(key_id)
        self._db.scrub()
        return True


def _ensure_rotatable(key: Key, *, manual: bool = False) -> None:
    """Automatic rotation is for symmetric keys (F3.4); CreateKeyVersion also makes a new key pair."""
    rule = SPEC_RULES.get(key.spec)
    if rule is None or (not rule.symmetric and not manual):
        raise UnsupportedOperation("Only symmetric keys rotate automatically; use CreateKeyVersion.")
    if key.protection_level is ProtectionLevel.HSM:
        raise UnsupportedOperation("Keys protected by an HSM do not rotate.")
    if key.origin is not Origin.ALIYUN_KMS:
        raise UnsupportedOperation("Keys with imported material do not rotate.")
