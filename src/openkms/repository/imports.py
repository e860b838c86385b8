"""Imported key material: import tokens with their wrapped wrapping keys, each EXTERNAL key's
import record (fixed version id, keyed fingerprint), and putting material in or taking it out.

Every method runs inside the caller's unit of work; none commits. Only wrapped bytes and keyed
fingerprints are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from openkms.domain.key_import import StoredToken, WrappingAlgorithm
from openkms.repository.material import wipe_versions
from openkms.repository.tables import as_utc, import_tokens, key_imports, key_versions, keys
from openkms.types import KeyId, KeyState, KeyVersionId


class ImportRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # -- the import record --------------------------------------------------------------------------
    def add_record(self, key_id: KeyId, version_id: KeyVersionId) -> None:
        self._c.execute(insert(key_imports).values(key_id=key_id, version_id=version_id, fingerprint=None))

    def record(self, key_id: KeyId) -> tuple[KeyVersionId, bytes | None] | None:
        """(the material's version id, the keyed fingerprint of the first import or None)."""
        row = self._c.execute(select(key_imports).where(key_imports.c.key_id == key_id)).first()
        if row is None:
            return None
        return KeyVersionId(row.version_id), None if row.fingerprint is None else bytes(row.fingerprint)

    # -- tokens -------------------------------------------------------------------------------------
    def add_token(self, token: StoredToken) -> None:
        self._c.execute(
            insert(import_tokens).values(
                token_id=token.token_id,
                key_id=token.key_id,
                wrapping_algorithm=token.algorithm.value,
                public_key=token.public_key_der,
                wrapped_private_key=token.wrapped_private_key,
                expires_at=token.expires_at,
                created_at=token.created_at,
            )
        )

    def token(self, token_id: str) -> StoredToken | None:
        row = self._c.execute(select(import_tokens).where(import_tokens.c.token_id == token_id)).first()
        return None if row is None else _token(row)

    def expire_tokens(
        self,
        now: datetime,
        forget_before: datetime,
        limit: int,
        destroy: Callable[[list[tuple[KeyId, str, bytes]]], None] | None = None,
    ) -> int:
        """Destroy the wrapping keys of up to `limit` tokens past their expiry (the row stays, so the
        token still answers "expired"), and delete the rows of tokens that expired before
        `forget_before`. `destroy` is given (key id, token id, stored wrapping key) of each token first,
        for a backend that holds the wrapping key itself (an HSM). Returns how many tokens were touched."""
        rows = self._c.execute(
            select(import_tokens.c.token_id, import_tokens.c.key_id, import_tokens.c.wrapped_private_key)
            .where(import_tokens.c.expires_at <= now, import_tokens.c.wrapped_private_key != b"")
            .limit(limit)
        ).all()
        expired = [row.token_id for row in rows]
        if destroy is not None and rows:
            destroy([(KeyId(row.key_id), row.token_id, bytes(row.wrapped_private_key)) for row in rows])
        if expired:
            self._c.execute(
                update(import_tokens)
                .where(import_tokens.c.token_id.in_(expired))
                .values(wrapped_private_key=b"")
            )
        forgotten = [
            row.token_id
            for row in self._c.execute(
                select(import_tokens.c.token_id)
                .where(import_tokens.c.expires_at <= forget_before)
                .limit(limit)
            )
        ]
        if forgotten:
            self._c.execute(delete(import_tokens).where(import_tokens.c.token_id.in_(forgotten)))
        return len(expired) + len(forgotten)

    def live_wrapping_keys(self, key_id: KeyId) -> list[tuple[str, bytes]]:
        """(token id, stored wrapping key) of the key's tokens whose wrapping key is not destroyed yet."""
        rows = self._c.execute(
            select(import_tokens.c.token_id, import_tokens.c.wrapped_private_key).where(
                import_tokens.c.key_id == key_id, import_tokens.c.wrapped_private_key != b""
            )
        )
        return [(row.token_id, bytes(row.wrapped_private_key)) for row in rows]

    # -- material -----------------------------------------------------------------------------------
    def put_material(
        self,
        key_id: KeyId,
        version_id: KeyVersionId,
        wrapped_material: bytes,
        fingerprint: bytes,
        state: KeyState,
        expire_time: datetime | None,
        now: datetime,
    ) -> None:
        """Store the material as the key's one version (replacing any row, whose creation date it
        keeps), remember the fingerprint if none is recorded yet, and set the key's state and expiry."""
        created = self._c.execute(
            select(key_versions.c.created_at).where(key_versions.c.version_id == version_id)
        ).scalar_one_or_none()
        wipe_versions(self._c, key_id)
        self._c.execute(
            insert(key_versions).values(
                version_id=version_id,
                key_id=key_id,
                seq=1,
                wrapped_material=wrapped_material,
                created_at=now if created is None else created,
            )
        )
        self._c.execute(
            update(key_imports)
            .where(key_imports.c.key_id == key_id, key_imports.c.fingerprint.is_(None))
            .values(fingerprint=fingerprint)
        )
        self._c.execute(
            update(keys)
            .where(keys.c.key_id == key_id)
            .values(state=state.value, material_expire_time=expire_time, primary_version_id=version_id)
        )

    def remove_material(self, key_id: KeyId) -> list[KeyVersionId]:
        """Destroy the key's material: PendingImport, no expiry, the version rows overwritten and gone.
        Returns the destroyed version ids (so caches can forget them)."""
        destroyed = wipe_versions(self._c, key_id)
        self._c.execute(
            update(keys)
            .where(keys.c.key_id == key_id)
            .values(state=KeyState.PENDING_IMPORT.value, material_expire_time=None)
        )
        return destroyed

    def due_for_expiry(self, now: datetime, limit: int) -> list[KeyId]:
        rows = self._c.execute(
            select(keys.c.key_id)
            .where(
                keys.c.material_expire_time.is_not(None),
                keys.c.material_expire_time <= now,
                keys.c.state.in_([KeyState.ENABLED.value, KeyState.DISABLED.value]),
            )
            .order_by(keys.c.material_expire_time)
            .limit(limit)
        )
        return [KeyId(row.key_id) for row in rows]


def _token(row: Row[Any]) -> StoredToken:
    return StoredToken(
        token_id=row.token_id,
        key_id=KeyId(row.key_id),
        algorithm=WrappingAlgorithm(row.wrapping_algorithm),
        public_key_der=bytes(row.public_key),
        wrapped_private_key=bytes(row.wrapped_private_key),
        expires_at=as_utc(row.expires_at),
        created_at=as_utc(row.created_at),
    )
