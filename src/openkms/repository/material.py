"""The one material wipe: every stored version of a key, overwritten and then deleted.

Owns the rule that wrapped material is overwritten before its rows go: with SQLite's secure_delete
the freed cells are zeroed too, so no page keeps a copy of the wrapped bytes (the caller scrubs the
database files after the commit). Used by key destruction and by the removal of imported material.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from openkms.repository.tables import key_versions
from openkms.types import KeyId, KeyVersionId

__all__ = ["wipe_versions"]


def wipe_versions(connection: Connection, key_id: KeyId) -> list[KeyVersionId]:
    """Overwrite and delete every version of `key_id`; the wiped version ids (caches forget them)."""
    versions = [
        KeyVersionId(row.version_id)
        for row in connection.execute(
            select(key_versions.c.version_id).where(key_versions.c.key_id == key_id)
        )
    ]
    connection.execute(
        update(key_versions).where(key_versions.c.key_id == key_id).values(wrapped_material=b"")
    )
    connection.execute(delete(key_versions).where(key_versions.c.key_id == key_id))
    return versions
