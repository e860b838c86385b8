"""Tags on keys: at most one value per tag key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, exists, select

from openkms.repository.tables import key_tags, keys
from openkms.repository.tag_rows import TagRows
from openkms.types import AccountId, KeyId, RegionId


class TagRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self._rows = TagRows(connection, key_tags, "key_id")

    def of(self, key_id: KeyId) -> dict[str, str]:
        return self._rows.of(key_id)

    def put(self, key_id: KeyId, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags (the caller checked the limits against `of()` in this transaction)."""
        self._rows.put(key_id, tags)

    def remove(self, key_id: KeyId, tag_keys: Iterable[str] | None) -> None:
        """Remove the named tags (absent ones are ignored), or all of them when `tag_keys` is None."""
        self._rows.remove(key_id, tag_keys)

    def keys_with(
        self, account_id: AccountId, region_id: RegionId, wanted: Sequence[tuple[str, str]]
    ) -> list[KeyId]:
        """The keys of an account and region carrying every (tag key, value) pair; an empty value
        matches any value. In key id order."""
        statement = select(keys.c.key_id).where(
            keys.c.account_id == account_id, keys.c.region_id == region_id
        )
        for tag_key, tag_value in wanted:
            tagged = select(key_tags.c.key_id).where(
                key_tags.c.key_id == keys.c.key_id, key_tags.c.tag_key == tag_key
            )
            if tag_value:
                tagged = tagged.where(key_tags.c.tag_value == tag_value)
            statement = statement.where(exists(tagged))
        return [KeyId(row.key_id) for row in self._c.execute(statement.order_by(keys.c.key_id))]
