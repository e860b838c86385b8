"""The audit log's sealed heads in the database (`audit.heads.HeadStore`), scoped to one node."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import insert

from openkms.domain.audit_heads import Head
from openkms.repository.blocking import ensure_may_block
from openkms.repository.tables import audit_heads


class DatabaseHeadStore:
    """Heads of the audit files of `node` (a data dir on a host), on short transactions of their own."""

    def __init__(self, engine: Engine, node: str) -> None:
        self._engine = engine
        self._node = node

    def publish(self, head: Head) -> None:
        ensure_may_block()
        now = datetime.now(UTC)
        values = {"slot": head.slot, "seq": head.seq, "hash": head.hash, "updated_at": now}
        where = (audit_heads.c.node == self._node) & (audit_heads.c.file == head.file)
        with self._engine.begin() as connection:
            if connection.execute(update(audit_heads).where(where).values(**values)).rowcount:
                return
            try:
                with connection.begin_nested():
                    connection.execute(insert(audit_heads).values(node=self._node, file=head.file, **values))
            except IntegrityError:  # published at the same moment by a second writer of this file
                connection.execute(update(audit_heads).where(where).values(**values))

    def last_of_slot(self, slot: str) -> Head | None:
        ensure_may_block()
        query = (
            select(audit_heads)
            .where((audit_heads.c.node == self._node) & (audit_heads.c.slot == slot))
            .order_by(audit_heads.c.updated_at.desc(), audit_heads.c.file.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else Head(row.file, row.slot, row.seq, row.hash)

    def heads(self) -> list[Head]:
        ensure_may_block()
        query = select(audit_heads).where(audit_heads.c.node == self._node).order_by(audit_heads.c.file)
        with self._engine.connect() as connection:
            return [Head(row.file, row.slot, row.seq, row.hash) for row in connection.execute(query)]
