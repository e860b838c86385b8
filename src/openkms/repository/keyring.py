"""The keyring's wrapped KEK terms (the keystore's KeyringStore, backed by the database)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from openkms.keystore.keyring import TermExists
from openkms.repository.blocking import ensure_may_block
from openkms.repository.tables import keyring_terms


class KeyringRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def load_terms(self) -> list[tuple[int, bytes]]:
        rows = self._c.execute(
            select(keyring_terms.c.term, keyring_terms.c.wrapped_kek).order_by(keyring_terms.c.term)
        )
        return [(int(row.term), bytes(row.wrapped_kek)) for row in rows]

    def add_term(self, term: int, wrapped: bytes) -> None:
        self._c.execute(
            insert(keyring_terms).values(term=term, wrapped_kek=wrapped, created_at=datetime.now(UTC))
        )


class DatabaseKeyringStore:
    """KeyringStore on its own short transactions (the keystore opens the keyring outside any request)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load_terms(self) -> list[tuple[int, bytes]]:
        ensure_may_block()
        with self._engine.connect() as connection:
            # A read (SQLite: BEGIN, not BEGIN IMMEDIATE): a wrap may refresh the keyring while its own
            # thread holds the write lock in another connection.
            connection.info["openkms_write"] = False
            return KeyringRepository(connection).load_terms()

    def add_term(self, term: int, wrapped: bytes) -> None:
        ensure_may_block()
        try:
            with self._engine.begin() as connection:
                KeyringRepository(connection).add_term(term, wrapped)
        except IntegrityError as exc:
            raise TermExists(term) from exc
