"""The kept number of keys of each account and region (table `key_counts`, migration 0010).

ListKeys without filters answers its TotalCount from here instead of counting the account's keys, so
the first page costs the same with 1 k or 1 M keys. Whoever inserts or deletes `keys` rows changes
the count in the same transaction: `KeyRepository.add` and `LifecycleRepository.destroy` (and bulk
fillers such as the scale bench). The change is an upsert that adds to the stored number, so two
creates committing at once both count (on PostgreSQL the second waits for the first's row lock).
"""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from openkms.repository.tables import key_counts


def change_key_count(connection: Connection, account_id: str, region_id: str, change: int) -> None:
    """Add `change` (negative for deletions) to the account's key count in the region."""
    if change == 0:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(key_counts).values(account_id=account_id, region_id=region_id, n=change)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[key_counts.c.account_id, key_counts.c.region_id],
            set_={"n": key_counts.c.n + statement.excluded.n},
        )
    )


def key_count(connection: Connection, account_id: str, region_id: str) -> int:
    """The account's number of keys in the region (0 when it never had one)."""
    found = connection.execute(
        select(key_counts.c.n).where(
            key_counts.c.account_id == account_id, key_counts.c.region_id == region_id
        )
    ).scalar_one_or_none()
    return 0 if found is None else int(found)
