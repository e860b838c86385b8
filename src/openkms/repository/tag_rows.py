"""Tag rows of one owner (a key or a secret): at most one value per tag key. The owner's repository
names its tag table and the column that holds the owner's id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Column, Connection, Table, delete, insert, select, update


class TagRows:
    def __init__(self, connection: Connection, table: Table, owner: str) -> None:
        self._c = connection
        self._table = table
        self._owner: Column[str] = table.c[owner]
        self._owner_name = owner

    def of(self, owner_id: str) -> dict[str, str]:
        table = self._table
        rows = self._c.execute(
            select(table.c.tag_key, table.c.tag_value)
            .where(self._owner == owner_id)
            .order_by(table.c.tag_key)
        )
        return {row.tag_key: row.tag_value for row in rows}

    def put(self, owner_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags (the caller checked the limits against `of()` in this transaction)."""
        table = self._table
        existing = self.of(owner_id)
        for tag_key, tag_value in tags.items():
            if tag_key in existing:
                self._c.execute(
                    update(table)
                    .where(self._owner == owner_id, table.c.tag_key == tag_key)
                    .values(tag_value=tag_value)
                )
            else:
                values = {self._owner_name: owner_id, "tag_key": tag_key, "tag_value": tag_value}
                self._c.execute(insert(table).values(**values))

    def remove(self, owner_id: str, tag_keys: Iterable[str] | None) -> None:
        """Remove the named tags (absent ones are ignored), or all of them when `tag_keys` is None."""
        statement = delete(self._table).where(self._owner == owner_id)
        if tag_keys is not None:
            statement = statement.where(self._table.c.tag_key.in_(list(tag_keys)))
        self._c.execute(statement)
