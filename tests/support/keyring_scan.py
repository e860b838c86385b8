"""Which stored rows are under a KEK term, found without the rewrap's own queries: every binary column
of every table is read and each value's keystore envelope (at the start, or after an external key's
header) is compared with the term's prefix. What the KEK rotation tests prove "nothing is left" with."""

from __future__ import annotations

import struct

import sqlalchemy as sa

from openkms.repository import tables


def rows_under(engine: sa.Engine, term: int) -> dict[str, int]:
    """Independent of the rewrap's own queries: every binary column of every table, and the count of
    values whose keystore envelope (at the start, or after an external key's header) is under `term`."""
    prefix = struct.pack(">BI", 1, term)
    found: dict[str, int] = {}
    with engine.connect() as connection:
        for table in tables.metadata.sorted_tables:
            if table.name == "keyring_terms":
                continue
            for column in table.columns:
                if not isinstance(column.type, sa.LargeBinary):
                    continue
                for (value,) in connection.execute(sa.select(column).where(column.is_not(None))):
                    data = bytes(value)
                    if data.startswith(b"XKS1") and len(data) > 5:
                        data = data[5 + data[4] :]
                    if data.startswith(prefix):
                        found[f"{table.name}.{column.name}"] = found.get(f"{table.name}.{column.name}", 0) + 1
    return found
