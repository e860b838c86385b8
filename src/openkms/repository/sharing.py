"""Instance sharing (F4.1), the grants other accounts hold on an instance's keys and the instance's
access quota (F4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from openkms.repository.tables import (
    as_utc,
    instance_grants,
    instance_quotas,
    instance_shares,
    instances,
    keys,
)


@dataclass(frozen=True, slots=True)
class GrantRow:
    grantee_account_id: str
    granted_at: datetime
    released_at: datetime | None


class SharingRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- sharing ------------------------------------------------------------------------------------
    def share(self, instance_id: str, account_id: str, now: datetime) -> bool:
        """Share; False when it was already shared with that account."""
        if self.is_shared(instance_id, account_id):
            return False
        self._c.execute(
            insert(instance_shares).values(instance_id=instance_id, account_id=account_id, shared_at=now)
        )
        return True

    def unshare(self, instance_id: str, account_id: str) -> bool:
        result = self._c.execute(
            delete(instance_shares).where(
                instance_shares.c.instance_id == instance_id, instance_shares.c.account_id == account_id
            )
        )
        return bool(result.rowcount)

    def is_shared(self, instance_id: str, account_id: str) -> bool:
        found = self._c.execute(
            select(instance_shares.c.account_id).where(
                instance_shares.c.instance_id == instance_id, instance_shares.c.account_id == account_id
            )
        ).first()
        return found is not None

    def shared_with(self, instance_id: str) -> list[tuple[str, datetime]]:
        """(account, since when) of every account the instance is shared with, by account."""
        rows = self._c.execute(
            select(instance_shares.c.account_id, instance_shares.c.shared_at)
            .where(instance_shares.c.instance_id == instance_id)
            .order_by(instance_shares.c.account_id)
        )
        return [(r.account_id, as_utc(r.shared_at)) for r in rows]

    def shared_instances(self, account_id: str) -> list[str]:
        """The instances of other accounts shared with `account_id`, by id."""
        rows = self._c.execute(
            select(instance_shares.c.instance_id)
            .where(instance_shares.c.account_id == account_id)
            .order_by(instance_shares.c.instance_id)
        )
        return [r.instance_id for r in rows]

    def lock_instance(self, instance_id: str) -> None:
        """Serialize grant changes on one instance (PostgreSQL row lock; SQLite writers are serial)."""
        if self._c.dialect.name != "sqlite":
            self._c.execute(
                select(instances.c.instance_id)
                .where(instances.c.instance_id == instance_id)
                .with_for_update()
            )

    # -- quota and grants ---------------------------------------------------------------------------
    def quota(self, instance_id: str) -> int | None:
        found = self._c.execute(
            select(instance_quotas.c.access_quota).where(instance_quotas.c.instance_id == instance_id)
        ).first()
        return None if found is None else int(found.access_quota)

    def set_quota(self, instance_id: str, quota: int) -> None:
        if self.quota(instance_id) is None:
            self._c.execute(insert(instance_quotas).values(instance_id=instance_id, access_quota=quota))
        else:
            self._c.execute(
                update(instance_quotas)
                .where(instance_quotas.c.instance_id == instance_id)
                .values(access_quota=quota)
            )

    def grants(self, instance_id: str) -> list[GrantRow]:
        rows = self._c.execute(
            select(instance_grants)
            .where(instance_grants.c.instance_id == instance_id)
            .order_by(instance_grants.c.grantee_account_id)
        )
        return [
            GrantRow(
                r.grantee_account_id,
                as_utc(r.granted_at),
                None if r.released_at is None else as_utc(r.released_at),
            )
            for r in rows
        ]

    def hold(self, instance_id: str, grantee: str, now: datetime) -> None:
        """The grantee holds a unit from now on (a released grant is taken up again)."""
        updated = self._c.execute(
            update(instance_grants)
            .where(
                instance_grants.c.instance_id == instance_id, instance_grants.c.grantee_account_id == grantee
            )
            .values(released_at=None)
        )
        if not updated.rowcount:
            self._c.execute(
                insert(instance_grants).values(
                    instance_id=instance_id, grantee_account_id=grantee, granted_at=now, released_at=None
                )
            )

    def release(self, instance_id: str, grantee: str, now: datetime) -> None:
        self._c.execute(
            update(instance_grants)
            .where(
                instance_grants.c.instance_id == instance_id,
                instance_grants.c.grantee_account_id == grantee,
                instance_grants.c.released_at.is_(None),
            )
            .values(released_at=now)
        )

    def forget(self, instance_id: str, grantee: str) -> None:
        self._c.execute(
            delete(instance_grants).where(
                instance_grants.c.instance_id == instance_id, instance_grants.c.grantee_account_id == grantee
            )
        )

    def key_policies(self, instance_id: str) -> list[tuple[str, str, str | None]]:
        """(key id, owning account, policy text) of every key in the instance."""
        rows = self._c.execute(
            select(keys.c.key_id, keys.c.account_id, keys.c.policy).where(keys.c.instance_id == instance_id)
        )
        return [(r.key_id, r.account_id, r.policy) for r in rows]
