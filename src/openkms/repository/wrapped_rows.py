"""Every stored row the keystore wrapped, by kind: reading them by term, counting them by term, and
replacing one only if it still holds what was read (compare-and-set), for the keyring's rewrap.

Owns which columns hold keystore-wrapped bytes: key_versions.wrapped_material (keys of software and
external instances; a hardware key's row is a reference to its token and is left alone),
import_tokens.wrapped_private_key (software keys), access_keys.wrapped_secret, instances.sealed_secret
and service_secrets.wrapped_value. Also the retired terms and the rewrap's progress row. Never
unwraps anything: the keystore does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from openkms.domain.keyring import RetiredTerm, WrappedKind
from openkms.repository.tables import (
    access_keys,
    as_utc,
    import_tokens,
    instances,
    key_versions,
    keyring_retired_terms,
    keyring_rewrap,
    keyring_terms,
    keys,
    service_secrets,
)
from openkms.types import InstanceKind

# The keystore's envelope starts with its format byte and the 4-byte term: rows whose first five
# bytes differ from the active term's are the ones left to rewrap.
PREFIX_LEN = 5


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One wrapped row: its primary key, the ids its binding is made of, and the stored bytes.

    `owner` is (key id, version id, spec) for key material, (key id, token id) for an import wrapping
    key, and the row's own id for the others. `external` marks an external key's reference, whose
    envelope follows a header (`providers/external.py`)."""

    kind: WrappedKind
    pk: str
    owner: tuple[str, ...]
    stored: bytes
    external: bool = False


def _not_hardware() -> ColumnElement[bool]:
    return or_(instances.c.kind.is_(None), instances.c.kind != InstanceKind.HARDWARE.value)


def _prefix(column: ColumnElement[bytes]) -> ColumnElement[bytes]:
    return func.substr(column, 1, PREFIX_LEN, type_=LargeBinary)


def _query(kind: WrappedKind) -> tuple[Select[Any], Column[Any], Column[Any]]:
    """The select of `kind`'s rows (pk first, then the owner ids, the stored bytes, the instance kind),
    its primary key column, and its wrapped column."""
    if kind is WrappedKind.KEY_MATERIAL:
        query = (
            select(
                key_versions.c.version_id,
                key_versions.c.key_id,
                key_versions.c.version_id,
                keys.c.spec,
                key_versions.c.wrapped_material,
                instances.c.kind,
            )
            .join(keys, keys.c.key_id == key_versions.c.key_id)
            .outerjoin(instances, instances.c.instance_id == keys.c.instance_id)
            .where(_not_hardware())
        )
        return (
            query,
            key_versions.c.version_id,
            key_versions.c.wrapped_material,
        )
    if kind is WrappedKind.IMPORT_WRAPPING_KEY:
        query = (
            select(
                import_tokens.c.token_id,
                import_tokens.c.key_id,
                import_tokens.c.token_id,
                import_tokens.c.wrapped_private_key,
                instances.c.kind,
            )
            .join(keys, keys.c.key_id == import_tokens.c.key_id)
            .outerjoin(instances, instances.c.instance_id == keys.c.instance_id)
            .where(_not_hardware())
        )
        return (
            cast("Select[Any]", query),
            import_tokens.c.token_id,
            import_tokens.c.wrapped_private_key,
        )
    if kind is WrappedKind.ACCESS_KEY_SECRET:
        query = select(
            access_keys.c.access_key_id,
            access_keys.c.access_key_id,
            access_keys.c.wrapped_secret,
            literal(None).label("kind"),
        )
        return cast("Select[Any]", query), access_keys.c.access_key_id, access_keys.c.wrapped_secret
    if kind is WrappedKind.INSTANCE_SECRET:
        query = select(
            instances.c.instance_id,
            instances.c.instance_id,
            instances.c.sealed_secret,
            literal(None).label("kind"),
        ).where(instances.c.sealed_secret.is_not(None))
        return cast("Select[Any]", query), instances.c.instance_id, instances.c.sealed_secret
    query = select(
        service_secrets.c.name,
        service_secrets.c.name,
        service_secrets.c.wrapped_value,
        literal(None).label("kind"),
    )
    return cast("Select[Any]", query), service_secrets.c.name, service_secrets.c.wrapped_value


class WrappedRowRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def not_under(self, kind: WrappedKind, prefix: bytes, after: str, limit: int) -> list[StoredRow]:
        """Up to `limit` rows of `kind` after primary key `after` (in key order) whose stored bytes do
        not start with `prefix`, and every external key's row (its envelope is further in)."""
        query, pk, wrapped = _query(kind)
        outside = _prefix(wrapped) != literal(prefix, LargeBinary)
        if kind is WrappedKind.KEY_MATERIAL:
            outside = or_(outside, instances.c.kind == InstanceKind.EXTERNAL.value)
        rows = self._c.execute(query.where(pk > after, outside).order_by(pk).limit(limit))
        found: list[StoredRow] = []
        for row in rows:
            values = tuple(row)
            external = values[-1] == InstanceKind.EXTERNAL.value
            found.append(
                StoredRow(
                    kind, str(values[0]), tuple(str(v) for v in values[1:-2]), bytes(values[-2]), external
                )
            )
        return found

    def external_material(self, after: str, limit: int) -> list[StoredRow]:
        """Up to `limit` external keys' rows after version id `after`: their term is past a header."""
        query, pk, _ = _query(WrappedKind.KEY_MATERIAL)
        rows = self._c.execute(
            query.where(pk > after, instances.c.kind == InstanceKind.EXTERNAL.value).order_by(pk).limit(limit)
        )
        return [
            StoredRow(
                WrappedKind.KEY_MATERIAL, str(r[0]), (str(r[1]), str(r[2]), str(r[3])), bytes(r[4]), True
            )
            for r in rows
        ]

    def prefix_counts(self, kind: WrappedKind) -> dict[bytes, int]:
        """How many rows of `kind` start with each prefix (external keys' rows left out)."""
        query, _, wrapped = _query(kind)
        inner = query.add_columns(_prefix(wrapped).label("prefix"))
        if kind is WrappedKind.KEY_MATERIAL:
            inner = inner.where(
                or_(instances.c.kind.is_(None), instances.c.kind != InstanceKind.EXTERNAL.value)
            )
        sub = inner.subquery()
        rows = self._c.execute(select(sub.c.prefix, func.count()).group_by(sub.c.prefix))
        return {bytes(p) if p is not None else b"": int(n) for p, n in rows}

    def replace(self, kind: WrappedKind, changes: list[tuple[StoredRow, bytes]]) -> int:
        """Store each new value in place of its row's `stored` bytes, only where the row still holds
        exactly those (a change made since it was read, or a deletion, wins). One statement for the
        whole batch (psycopg pipelines it); the number of rows replaced."""
        if not changes:
            return 0
        _, pk, wrapped = _query(kind)
        statement = (
            update(wrapped.table)
            .where(pk == bindparam("b_pk"), wrapped == bindparam("b_old", type_=LargeBinary))
            .values({wrapped.name: bindparam("b_new", type_=LargeBinary)})
        )
        parameters = [{"b_pk": row.pk, "b_old": row.stored, "b_new": new} for row, new in changes]
        return int(self._c.execute(statement, parameters).rowcount)

    # -- retirement and progress ------------------------------------------------------------------
    def term_created(self) -> dict[int, datetime]:
        rows = self._c.execute(select(keyring_terms.c.term, keyring_terms.c.created_at))
        return {int(term): as_utc(created) for term, created in rows}

    def retired_terms(self) -> list[RetiredTerm]:
        rows = self._c.execute(select(keyring_retired_terms).order_by(keyring_retired_terms.c.term))
        return [RetiredTerm(int(r.term), as_utc(r.created_at), as_utc(r.retired_at)) for r in rows]

    def retire(self, term: int, created_at: datetime, now: datetime) -> bool:
        """Delete `term`'s wrapped KEK and record it retired; False if it is not stored any more."""
        deleted = self._c.execute(delete(keyring_terms).where(keyring_terms.c.term == term)).rowcount
        if deleted != 1:
            return False
        self._c.execute(
            insert(keyring_retired_terms).values(term=term, created_at=created_at, retired_at=now)
        )
        return True

    def lock_terms(self) -> None:
        """Hold the keyring against concurrent rotation and retirement until the transaction ends.

        PostgreSQL: a table lock that conflicts with every write of another transaction. SQLite: the
        write transaction (BEGIN IMMEDIATE) already holds the database's one write lock."""
        if self._c.dialect.name == "postgresql":
            self._c.exec_driver_sql("LOCK TABLE keyring_terms IN SHARE ROW EXCLUSIVE MODE")

    def replace_term(self, term: int, old: bytes, new: bytes) -> bool:
        """A term's wrapped KEK replaced (a passphrase change), only if it still holds `old`."""
        result = self._c.execute(
            update(keyring_terms)
            .where(keyring_terms.c.term == term, keyring_terms.c.wrapped_kek == old)
            .values(wrapped_kek=new)
        )
        return result.rowcount == 1

    def progress(self) -> tuple[int, int, datetime | None]:
        """(term the rewrap moves rows to, rows moved to it, when the last batch moved one)."""
        row = self._c.execute(select(keyring_rewrap).where(keyring_rewrap.c.id == 1)).one_or_none()
        if row is None:
            return 0, 0, None
        last = None if row.last_batch_at is None else as_utc(row.last_batch_at)
        return int(row.term), int(row.rewrapped), last

    def record_batch(self, term: int, rewrapped: int, now: datetime) -> None:
        """Count `rewrapped` rows moved to `term` (restarting the count when the term is new)."""
        current, count, _ = self.progress()
        total = count + rewrapped if current == term else rewrapped
        self._c.execute(
            update(keyring_rewrap)
            .where(keyring_rewrap.c.id == 1)
            .values(term=term, rewrapped=total, last_batch_at=now)
        )
