"""Key usage tracking and key association detection (F8).

Every successful cryptographic call is counted in memory per (key, caller, service): a dict update on
the hot path, no database round trip. A background task of each worker writes the counts in one
batched upsert every few seconds (and at shutdown), adding to what other workers wrote.

A detection run (StartKeyAssociationDetection, `openkms key associations`) waits one flush interval so
every worker's recent calls are in, then lists who called the key in the last 365 days: per service
for integrated services, per principal otherwise, with the last call time. Its status goes Running ->
Succeeded (or Failed, with a reason an operator can act on).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock, iso_utc
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.repository.usage import DetectionRow, UsageRow
from openkms.service.context import Principal, RequestContext
from openkms.service.keys import KeyService, key_resource
from openkms.service.outcome import Outcome

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=365)
FLUSH_SECONDS = 5.0
ABANDONED_AFTER = 60.0  # a run still Running this long after its settle time will not finish


@dataclass(frozen=True, slots=True)
class Association:
    service: str  # "" when the caller is not an integrated service
    principal: str
    last_call: datetime
    calls: int


class UsageRecorder:
    """The per-process tally. `record` is safe from the event loop and from handler threads."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], list[float]] = {}  # -> [count, last epoch seconds]

    def record(self, key_id: str, principal: Principal, when: float) -> None:
        service = principal.name if principal.actor == "service" else ""
        slot = (key_id, principal.arn, service)
        with self._lock:
            tally = self._pending.get(slot)
            if tally is None:
                self._pending[slot] = [1, when]
            else:
                tally[0] += 1
                tally[1] = max(tally[1], when)

    def flush(self) -> int:
        """Write what was counted since the last flush; returns the rows written. Blocking (database)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [
            UsageRow(key, principal, service, datetime.fromtimestamp(last, UTC), int(count))
            for (key, principal, service), (count, last) in pending.items()
        ]
        try:
            with self._db.unit_of_work(write=True) as uow:
                uow.usage.add(rows)
        except Exception:
            # Put the counts back so a passing database outage loses nothing; the next flush retries.
            with self._lock:
                for (key, principal, service), (count, last) in pending.items():
                    tally = self._pending.setdefault((key, principal, service), [0, 0.0])
                    tally[0] += count
                    tally[1] = max(tally[1], last)
            raise
        return len(rows)


class AssociationService:
    def __init__(self, db: Database, keys: KeyService, clock: Clock, recorder: UsageRecorder) -> None:
        self._db = db
        self._keys = keys
        self._clock = clock
        self.recorder = recorder
        # Twice the flush interval: every worker has flushed at least once since the run started.
        self.settle_seconds = 2 * FLUSH_SECONDS

    def start(self, ctx: RequestContext, key_ref: str) -> Outcome[DetectionRow]:
        """Begin a detection run of a key; the caller runs `complete` later (after the settle time)."""
        key = self._keys.read(ctx, key_ref, KmsAction.START_KEY_ASSOCIATION_DETECTION)
        return Outcome(self._start(key.key_id), key_resource(key))

    def _start(self, key_id: str) -> DetectionRow:
        detection_id = str(uuid.uuid4())
        now = self._clock.now()
        try:
            with self._db.unit_of_work(write=True) as uow:
                uow.usage.start_detection(key_id, detection_id, now)
        except IntegrityError:
            # Another request started a run of this key at the same moment: report that one.
            with self._db.unit_of_work() as uow:
                running = uow.usage.detection(key_id)
            if running is None:
                raise
            return running
        return DetectionRow(key_id, detection_id, "Running", now, None, None)

    def complete(self, key_id: str, detection_id: str) -> None:
        """Finish a run: flush this worker's tally, then list the key's callers. Blocking (database)."""
        try:
            self.recorder.flush()
        except Exception:
            log.exception("key usage could not be written before detection %s", detection_id)
        run_detection(self._db, self._clock, key_id, detection_id)

    def describe(
        self, ctx: RequestContext, key_ref: str
    ) -> Outcome[tuple[DetectionRow | None, list[Association]]]:
        key = self._keys.read(ctx, key_ref, KmsAction.DESCRIBE_KEY_ASSOCIATIONS)
        found = latest_detection(self._db, self._clock, key.key_id, self.settle_seconds)
        return Outcome(found, key_resource(key))


def run_detection(db: Database, clock: Clock, key_id: str, detection_id: str) -> None:
    """List the callers of a key in the last 365 days into its detection row (Succeeded or Failed)."""
    result: str | None = None
    try:
        # Calls are stamped with the wall clock (as signatures are), so the window is too.
        now = datetime.fromtimestamp(clock.timestamp(), UTC)
        with db.unit_of_work() as uow:
            rows = uow.usage.of_key(key_id, now - LOOKBACK)
        result = json.dumps(
            [
                {"Service": r.service, "Principal": r.principal, "LastCallTime": iso_utc(r.last_used_at),
                 "CallCount": r.call_count}
                for r in rows
            ]
        )  # fmt: skip
        status = "Succeeded"
    except Exception:
        log.exception("key association detection %s of key %s failed", detection_id, key_id)
        status = "Failed"
    with db.unit_of_work(write=True) as uow:
        uow.usage.finish_detection(key_id, detection_id, status, result, clock.now())


def detect_now(db: Database, clock: Clock, key_id: str) -> tuple[DetectionRow | None, list[Association]]:
    """A whole run at once, for the administrator's CLI (no request, no settle time); None: no key."""
    detection_id = str(uuid.uuid4())
    with db.unit_of_work(write=True) as uow:
        if uow.keys.get(key_id) is None:
            return None, []
        uow.usage.start_detection(key_id, detection_id, clock.now())
    run_detection(db, clock, key_id, detection_id)
    return latest_detection(db, clock, key_id, 0.0)


def latest_detection(
    db: Database, clock: Clock, key_id: str, settle_seconds: float
) -> tuple[DetectionRow | None, list[Association]]:
    """The key's latest detection and what it found; a run abandoned by a stopped worker is Failed."""
    with db.unit_of_work() as uow:
        row = uow.usage.detection(key_id)
    if row is not None and row.status == "Running":
        abandoned = row.started_at + timedelta(seconds=settle_seconds + ABANDONED_AFTER)
        if abandoned < clock.now():
            return replace(row, status="Failed"), []
    if row is None or row.result is None:
        return row, []
    associations = [
        Association(
            item["Service"], item["Principal"], _parse_time(item["LastCallTime"]), int(item["CallCount"])
        )
        for item in json.loads(row.result)
    ]
    return row, associations


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
