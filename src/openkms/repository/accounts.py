"""Accounts, regions and access keys (the secret stays wrapped here; the keystore unwraps it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from openkms.repository.tables import access_keys, accounts, regions
from openkms.types import AccessKeyId, AccountId, RegionId


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    access_key_id: AccessKeyId
    account_id: AccountId
    principal_name: str
    wrapped_secret: bytes
    status: str


class AccountRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def region_ids(self) -> list[RegionId]:
        rows = self._c.execute(select(regions.c.region_id).order_by(regions.c.region_id))
        return [RegionId(row.region_id) for row in rows]

    def add_region(self, region_id: RegionId, now: datetime) -> None:
        self._c.execute(insert(regions).values(region_id=region_id, created_at=now))

    def account_ids(self) -> list[AccountId]:
        rows = self._c.execute(select(accounts.c.account_id).order_by(accounts.c.created_at))
        return [AccountId(row.account_id) for row in rows]

    def add_account(self, account_id: AccountId, now: datetime) -> None:
        self._c.execute(insert(accounts).values(account_id=account_id, kms_status="Enabled", created_at=now))

    def exists(self, account_id: str) -> bool:
        return (
            self._c.execute(select(accounts.c.account_id).where(accounts.c.account_id == account_id)).first()
            is not None
        )

    def alias(self, account_id: str) -> str | None:
        row = self._c.execute(select(accounts.c.alias).where(accounts.c.account_id == account_id)).first()
        return None if row is None else row.alias

    def account_with_alias(self, alias: str) -> AccountId | None:
        row = self._c.execute(select(accounts.c.account_id).where(accounts.c.alias == alias)).first()
        return None if row is None else AccountId(row.account_id)

    def set_alias(self, account_id: str, alias: str | None) -> None:
        self._c.execute(update(accounts).where(accounts.c.account_id == account_id).values(alias=alias))

    def kms_status(self, account_id: AccountId) -> str | None:
        row = self._c.execute(
            select(accounts.c.kms_status).where(accounts.c.account_id == account_id)
        ).first()
        return None if row is None else str(row.kms_status)

    def add_access_key(
        self,
        access_key_id: AccessKeyId,
        account_id: AccountId,
        principal_name: str,
        wrapped_secret: bytes,
        now: datetime,
    ) -> None:
        self._c.execute(
            insert(access_keys).values(
                access_key_id=access_key_id,
                account_id=account_id,
                principal_name=principal_name,
                wrapped_secret=wrapped_secret,
                status="Active",
                created_at=now,
            )
        )

    def access_key(self, access_key_id: str) -> AccessKeyRow | None:
        row = self._c.execute(select(access_keys).where(access_keys.c.access_key_id == access_key_id)).first()
        if row is None:
            return None
        return AccessKeyRow(
            AccessKeyId(row.access_key_id),
            AccountId(row.account_id),
            row.principal_name,
            bytes(row.wrapped_secret),
            row.status,
        )

    def access_key_ids(self, account_id: AccountId) -> list[AccessKeyId]:
        rows = self._c.execute(
            select(access_keys.c.access_key_id).where(access_keys.c.account_id == account_id)
        )
        return [AccessKeyId(row.access_key_id) for row in rows]
