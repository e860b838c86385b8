"""Aliases: unique names per account and region, each pointing at one key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from openkms.domain.alias import Alias
from openkms.errors import Conflict
from openkms.repository.tables import aliases
from openkms.types import AccountId, KeyId, RegionId


class AliasRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, alias: Alias, now: datetime) -> None:
        """Insert an alias; an existing name in the account and region is a Conflict."""
        try:
            with self._c.begin_nested():
                self._c.execute(
                    insert(aliases).values(
                        account_id=alias.account_id,
                        region_id=alias.region_id,
                        alias_name=alias.name,
                        key_id=alias.key_id,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"The alias {alias.name} already exists.") from exc

    def get(self, account_id: AccountId, region_id: RegionId, name: str) -> Alias | None:
        row = self._c.execute(
            select(aliases.c.key_id).where(
                aliases.c.account_id == account_id,
                aliases.c.region_id == region_id,
                aliases.c.alias_name == name,
            )
        ).first()
        return None if row is None else Alias(account_id, region_id, name, KeyId(row.key_id))

    def repoint(self, alias: Alias) -> None:
        self._c.execute(
            update(aliases)
            .where(
                aliases.c.account_id == alias.account_id,
                aliases.c.region_id == alias.region_id,
                aliases.c.alias_name == alias.name,
            )
            .values(key_id=alias.key_id)
        )

    def remove(self, alias: Alias) -> None:
        self._c.execute(
            delete(aliases).where(
                aliases.c.account_id == alias.account_id,
                aliases.c.region_id == alias.region_id,
                aliases.c.alias_name == alias.name,
            )
        )

    def page(
        self, account_id: AccountId, region_id: RegionId, key_id: KeyId | None, offset: int, limit: int
    ) -> tuple[list[Alias], int]:
        conditions = [aliases.c.account_id == account_id, aliases.c.region_id == region_id]
        if key_id is not None:
            conditions.append(aliases.c.key_id == key_id)
        total = self._c.execute(select(func.count()).select_from(aliases).where(*conditions)).scalar_one()
        rows = self._c.execute(
            select(aliases.c.alias_name, aliases.c.key_id)
            .where(*conditions)
            .order_by(aliases.c.alias_name)
            .offset(offset)
            .limit(limit)
        )
        found = [Alias(account_id, region_id, row.alias_name, KeyId(row.key_id)) for row in rows]
        return found, int(total)
