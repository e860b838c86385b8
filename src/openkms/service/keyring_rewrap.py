"""KEK rotation: add a keyring term, move every wrapped row to it in batches, report the progress, and
retire old terms once nothing is under them.

Owns the order of the rewrap and its safety rules. A batch reads up to `batch_size` rows of one kind
that are not under the active term, rewraps them in the keystore (each keeps its binding), and writes
them back in one transaction, each only if the row still holds what was read (compare-and-set), so a
concurrent change of the same row is never overwritten. The state lives in the rows (each names its
term): a rewrap that crashed is resumed by running it again, by any process. Rows that fail their
integrity check are left alone, logged by kind and id, and keep their term from being retired.

Retirement deletes a term's wrapped KEK only when no row is under it, in the same transaction as the
count, and only once the store was quiet for `grace_seconds` after the newest term was added and the
last batch wrote: other processes wrap under a stale term for at most `KEYRING_REFRESH_SECONDS`
after a rotation, and keep rows read before a batch in their caches for at most their cache TTL.
The active term is never retired. Never logs or returns key material.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.exc import OperationalError, ProgrammingError

from openkms.domain.key_import import WRAPPING_KEY_BINDING
from openkms.domain.keyring import KeyringStatus, RewrapBatch, TermRows, WrappedKind
from openkms.errors import Conflict, InvalidArgument, StorageIntegrityError, Unavailable
from openkms.keystore import Keystore, term_in_prefix, term_of, term_prefix
from openkms.providers.external import split_reference
from openkms.repository.database import Database
from openkms.repository.wrapped_rows import StoredRow, WrappedRowRepository
from openkms.service import key_import, sts_tokens
from openkms.service.identities import secret_binding
from openkms.service.instance_ca import CA_KEY_PURPOSE, CA_KEY_SECRET
from openkms.service.key_stores import instance_secret_binding
from openkms.service.service_secrets import AUDIT_CHAIN_SECRET, service_secret_binding

log = logging.getLogger("openkms.keyring")

BATCH_SIZE: Final = 500
GRACE_SECONDS: Final = 60.0
KINDS: Final = tuple(WrappedKind)

# The purpose each server secret is wrapped with (`service_secrets.service_secret` callers).
SERVICE_SECRET_PURPOSES: Final[dict[str, str]] = {
    AUDIT_CHAIN_SECRET: "audit chain HMAC",
    key_import.SECRET_NAME: "KeyImportKey",
    sts_tokens.SECRET_NAME: "StsTokenKey",
    CA_KEY_SECRET: CA_KEY_PURPOSE,
}


def _binding(row: StoredRow) -> tuple[str, str, str]:
    if row.kind is WrappedKind.KEY_MATERIAL:
        key_id, version_id, spec = row.owner
        return key_id, version_id, spec
    if row.kind is WrappedKind.IMPORT_WRAPPING_KEY:
        key_id, token_id = row.owner
        return key_id, token_id, WRAPPING_KEY_BINDING
    if row.kind is WrappedKind.ACCESS_KEY_SECRET:
        return secret_binding(row.owner[0])
    if row.kind is WrappedKind.INSTANCE_SECRET:
        return instance_secret_binding(row.owner[0])
    purpose = SERVICE_SECRET_PURPOSES.get(row.owner[0])
    if purpose is None:
        raise StorageIntegrityError(f"The service secret {row.owner[0]!r} has no known purpose.")
    return service_secret_binding(row.owner[0], purpose)


def _envelope(row: StoredRow) -> tuple[bytes, bytes]:
    """(header kept as it is, keystore envelope): the header is empty except for external keys."""
    return split_reference(row.stored) if row.external else (b"", row.stored)


class KeyringRotation:
    """Rotation, rewrap, status and retirement over one store. One per process that runs the rewrap
    (the CLI's `keyring rotate`/`rewrap`, or a jobs leader calling `run_batch`); the cursor of the
    pass in progress is in memory only: losing it costs a re-read, never a row."""

    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        *,
        batch_size: int = BATCH_SIZE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._db = db
        self._keystore = keystore
        self._batch_size = batch_size
        self._now = now
        self._kind = 0
        self._after = ""
        self._pass_moved = 0
        self._settled_term = 0  # the active term a whole pass found nothing left for (run_step)

    def rotate(self) -> int:
        """Add a term and make it active (here now, in other processes within a second); returns it."""
        term = self._keystore.rotate_keyring()
        log.info("keyring: term %d is active; rows under older terms are rewrapped to it", term)
        return term

    def run_batch(self) -> RewrapBatch:
        """Rewrap the next batch of rows that are not under the active term (the jobs leader's step)."""
        self._keystore.refresh()
        active = self._keystore.active_term
        kind = KINDS[self._kind]
        with self._db.unit_of_work() as uow:
            rows = WrappedRowRepository(uow.connection).not_under(
                kind, term_prefix(active), self._after, self._batch_size
            )
        changed: list[tuple[StoredRow, bytes]] = []
        failed = 0
        for row in rows:
            try:
                new = self._rewrap(row, active)
            except StorageIntegrityError:
                failed += 1
                log.warning("keyring: %s %s failed its integrity check; it was not rewrapped", kind, row.pk)
                continue
            if new != row.stored:
                changed.append((row, new))
        moved = 0
        if changed:
            with self._db.unit_of_work(write=True) as uow:
                repository = WrappedRowRepository(uow.connection)
                moved = repository.replace(kind, changed)
                repository.record_batch(active, moved, self._now())
        finished = False
        if len(rows) < self._batch_size:
            self._after = ""
            self._kind = (self._kind + 1) % len(KINDS)
            finished = self._kind == 0
        else:
            self._after = rows[-1].pk
        return RewrapBatch(moved, failed, finished)

    def run_step(self, max_batches: int = 10) -> int:
        """For a periodic caller (the jobs leader): up to `max_batches` batches, and none at all once a
        whole pass moved nothing for the active term (until the next rotation). Rows moved."""
        self._keystore.refresh()
        if self._settled_term == self._keystore.active_term:
            return 0
        moved = 0
        for _ in range(max_batches):
            batch = self.run_batch()
            moved += batch.rewrapped
            self._pass_moved += batch.rewrapped
            if batch.pass_finished:
                if self._pass_moved == 0:
                    self._settled_term = self._keystore.active_term
                    log.info("keyring: every readable row is under term %d", self._settled_term)
                self._pass_moved = 0
                break
        return moved

    def run_pass(self, on_batch: Callable[[RewrapBatch], None] | None = None) -> RewrapBatch:
        """One pass over every kind, from where the last one stopped; the pass's totals."""
        moved = failed = 0
        while True:
            batch = self.run_batch()
            moved += batch.rewrapped
            failed += batch.failed
            if on_batch is not None:
                on_batch(batch)
            if batch.pass_finished:
                return RewrapBatch(moved, failed, True)

    def run_until_done(self, on_batch: Callable[[RewrapBatch], None] | None = None) -> RewrapBatch:
        """Passes until one moves nothing (rows wrapped under an old term by a process that had not yet
        seen the rotation are caught by the next pass); the totals."""
        moved = 0
        while True:
            result = self.run_pass(on_batch)
            moved += result.rewrapped
            if result.rewrapped == 0:
                return RewrapBatch(moved, result.failed, True)

    def status(self) -> KeyringStatus:
        """Terms, rows under each by kind, retired terms and progress. Reads only: needs no unseal."""
        try:
            with self._db.unit_of_work() as uow:
                repository = WrappedRowRepository(uow.connection)
                created = repository.term_created()
                counts, unreadable = _term_counts(repository)
                retired = repository.retired_terms()
                progress_term, rewrapped, last_batch_at = repository.progress()
        except (OperationalError, ProgrammingError):
            raise Unavailable(
                "The database cannot be read as an OpenKMS store (not reachable, or not migrated: "
                "run `openkms migrate`)."
            ) from None
        if not created:
            raise InvalidArgument("The keyring has no terms yet (the store was never unsealed).")
        active = max(created)
        if progress_term != active:  # no batch has moved a row to the active term yet
            rewrapped = 0
        terms = []
        for term in sorted(created):
            rows = {kind: counts[term][kind] for kind in KINDS if counts.get(term, {}).get(kind)}
            terms.append(TermRows(term, created[term], term == active, rows))
        orphaned = sum(sum(by_kind.values()) for term, by_kind in counts.items() if term not in created)
        return KeyringStatus(
            active, tuple(terms), tuple(retired), rewrapped, last_batch_at, unreadable + orphaned
        )

    def retire(self, term: int | None = None, *, grace_seconds: float = GRACE_SECONDS) -> list[int]:
        """Retire `term` (or every old term with no row left, when None); the terms retired.

        Refused for the active term, for a term with rows under it (when named), and within
        `grace_seconds` of the newest term's creation or the last batch's write."""
        with self._db.unit_of_work(write=True) as uow:
            repository = WrappedRowRepository(uow.connection)
            repository.lock_terms()
            created = repository.term_created()
            if not created:
                raise InvalidArgument("The keyring has no terms yet.")
            active = max(created)
            if term == active:
                raise InvalidArgument(f"Term {term} is the active term; it is never retired.")
            if term is not None and term not in created:
                raise InvalidArgument(f"Term {term} is not a live term of the keyring.")
            now = self._now()
            _, _, last_batch_at = repository.progress()
            quiet_since = max(created[active], last_batch_at or created[active])
            wait = quiet_since + timedelta(seconds=grace_seconds) - now
            if wait > timedelta(0):
                raise Conflict(
                    f"A term was added or rows were rewrapped less than {grace_seconds:g} s ago; "
                    f"retire again in {wait.total_seconds():.0f} s (other nodes may still use the old term)."
                )
            counts, _ = _term_counts(repository)
            candidates = [term] if term is not None else [t for t in sorted(created) if t != active]
            retired: list[int] = []
            for candidate in candidates:
                left = sum(counts.get(candidate, {}).values())
                if left:
                    if term is not None:
                        raise Conflict(
                            f"{left} stored row(s) are still under term {candidate}; run `openkms keyring "
                            "rewrap` first."
                        )
                    continue
                if repository.retire(candidate, created[candidate], now):
                    retired.append(candidate)
        if retired:
            log.info("keyring: retired term(s) %s", retired)
        return retired

    def _rewrap(self, row: StoredRow, active: int) -> bytes:
        header, envelope = _envelope(row)
        if term_of(envelope) == active:
            return row.stored
        return header + self._keystore.rewrap(*_binding(row), envelope)


def _term_counts(repository: WrappedRowRepository) -> tuple[dict[int, dict[WrappedKind, int]], int]:
    """Rows per term per kind, and the rows whose term cannot be read."""
    counts: dict[int, dict[WrappedKind, int]] = {}
    unreadable = 0

    def add(term: int, kind: WrappedKind, n: int) -> None:
        by_kind = counts.setdefault(term, {})
        by_kind[kind] = by_kind.get(kind, 0) + n

    for kind in KINDS:
        for prefix, n in repository.prefix_counts(kind).items():
            try:
                add(term_in_prefix(prefix), kind, n)
            except StorageIntegrityError:
                unreadable += n
    after = ""
    while True:
        rows = repository.external_material(after, BATCH_SIZE)
        for row in rows:
            try:
                add(term_of(split_reference(row.stored)[1]), row.kind, 1)
            except StorageIntegrityError:
                unreadable += 1
        if len(rows) < BATCH_SIZE:
            return counts, unreadable
        after = rows[-1].pk
