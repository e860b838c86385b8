"""Instance sharing (F4.1) and the access-management quota (F4.3).

Sharing is an administrator's act (`openkms instance share`): an account the instance is shared with
may create keys in it, and such a key's default policy makes it usable by that account and by the
instance's owner. Every distinct other main account that a key policy of the instance grants holds one
unit of the instance's quota; when no key grants it any more, its unit comes back only after the
release delay (about 5 minutes by default). A policy change that would need more units is refused and
changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from openkms.clock import Clock
from openkms.domain.instance import Instance
from openkms.errors import InstanceNotFound, InvalidArgument, QuotaExceeded
from openkms.policy.key_policy import key_policy_document, other_accounts
from openkms.repository.database import Database, UnitOfWork

DEFAULT_QUOTA = 10
DEFAULT_RELEASE_SECONDS = 300


class InstanceAccess:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        default_quota: int = DEFAULT_QUOTA,
        release_seconds: float = DEFAULT_RELEASE_SECONDS,
    ) -> None:
        self._db = db
        self._clock = clock
        self.default_quota = default_quota
        self.release = timedelta(seconds=release_seconds)

    # -- administration (CLI) -----------------------------------------------------------------------
    def instance(self, instance_id: str) -> Instance:
        with self._db.unit_of_work() as uow:
            instance = uow.instances.get(instance_id)
        if instance is None:
            raise InstanceNotFound(f"The KMS instance {instance_id!r} does not exist.")
        return instance

    def share(self, instance_id: str, account_id: str) -> bool:
        with self._db.unit_of_work(write=True) as uow:
            instance = uow.instances.get(instance_id)
            if instance is None:
                raise InstanceNotFound(f"The KMS instance {instance_id!r} does not exist.")
            if instance.account_id == account_id:
                raise InvalidArgument("An instance is not shared with its own account.")
            if account_id not in uow.accounts.account_ids():
                raise InvalidArgument(f"There is no account {account_id}.")
            return uow.sharing.share(instance_id, account_id, self._clock.now())

    def unshare(self, instance_id: str, account_id: str) -> bool:
        with self._db.unit_of_work(write=True) as uow:
            return uow.sharing.unshare(instance_id, account_id)

    def set_quota(self, instance_id: str, quota: int) -> None:
        if not 0 <= quota <= 10_000:
            raise InvalidArgument("The access quota must be between 0 and 10000.")
        with self._db.unit_of_work(write=True) as uow:
            if uow.instances.get(instance_id) is None:
                raise InstanceNotFound(f"The KMS instance {instance_id!r} does not exist.")
            uow.sharing.set_quota(instance_id, quota)

    def usage(self, instance_id: str) -> tuple[int, list[str], list[str]]:
        """(quota, accounts holding a unit, accounts whose unit is still cooling down)."""
        now = self._clock.now()
        with self._db.unit_of_work() as uow:
            quota = uow.sharing.quota(instance_id)
            grants = uow.sharing.grants(instance_id)
        held = [g.grantee_account_id for g in grants if g.released_at is None]
        cooling = [
            g.grantee_account_id
            for g in grants
            if g.released_at is not None and g.released_at + self.release > now
        ]
        return (self.default_quota if quota is None else quota), held, cooling

    # -- inside a key's write transaction -----------------------------------------------------------
    def enforce(
        self,
        uow: UnitOfWork,
        instance_id: str | None,
        key_id: str,
        key_account: str,
        policy: str | None,
        now: datetime,
    ) -> None:
        """Recount the instance's grants as if `key_id` had `policy`; refuse beyond the quota."""
        if instance_id is None:
            return  # default keys belong to no instance and have no access quota
        instance = uow.instances.get(instance_id)
        if instance is None:
            return
        uow.sharing.lock_instance(instance_id)
        owners = {instance.account_id}
        active: set[str] = set()
        seen_key = False
        for other_key, account, stored_policy in uow.sharing.key_policies(instance_id):
            text = stored_policy
            if other_key == key_id:
                seen_key, text = True, policy
            active |= other_accounts(key_policy_document(account, text), account) - owners - {account}
        if not seen_key:
            active |= (
                other_accounts(key_policy_document(key_account, policy), key_account) - owners - {key_account}
            )
        grants = {g.grantee_account_id: g for g in uow.sharing.grants(instance_id)}
        # A unit no key grants any more is returning: released now, or less than the delay ago.
        cooling = {
            account
            for account, grant in grants.items()
            if account not in active and (grant.released_at is None or grant.released_at + self.release > now)
        }
        stored = uow.sharing.quota(instance_id)
        quota = self.default_quota if stored is None else stored
        if len(active | cooling) > quota:
            detail = (
                f" ({len(cooling)} released less than {int(self.release.total_seconds())} s ago)"
                if cooling
                else ""
            )
            raise QuotaExceeded(
                f"The instance's access quota of {quota} other account(s) would be exceeded: "
                f"{len(active)} granted{detail}."
            )
        for account, grant in grants.items():
            if account in active:
                continue
            if grant.released_at is None:
                uow.sharing.release(instance_id, account, now)
            elif grant.released_at + self.release <= now:
                uow.sharing.forget(instance_id, account)
        for account in active:
            uow.sharing.hold(instance_id, account, now)
