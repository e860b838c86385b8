"""Reading the audit log as a signed-in principal does (the console's Audit page): the newest records
of the caller's own account, filtered, and the verification status of the log.

Owns who may read (the account's root; a RAM user or role session allowed `actiontrail:LookupEvents`
by its identity policies - ActionTrail is Alibaba's audit product) and how much one request may read.
The files' format belongs to `audit/`; this module only reads them: it never writes, moves or keys a
file, and never returns a record of another account (a record is the caller's when its `account_id`
is the caller's account: requests made by the account's root, users, roles and jobs; a request
another account made with a key shared with it is that account's record).

Bounded work: a lookup reads the newest files backwards and stops after `scan_records` lines, so
records older than that are not searched (the page says so; `openkms audit` reads everything). The
verification is `openkms audit verify`'s (`audit/verify.py`: every file's hash chain, keyed with the
server's chain key, the links between a worker's files and the sealed heads in the database), run at
most once per `verify_interval` seconds per process and only while the log is under `verify_bytes`.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from openkms.audit.verify import VerifyReport, verify_directory
from openkms.audit.wal import wal_path
from openkms.clock import Clock
from openkms.domain.audit_heads import HeadStore
from openkms.errors import InvalidArgument
from openkms.resource import Resource
from openkms.service.authorization import authorize_own
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

LOOKUP_ACTION = "actiontrail:LookupEvents"
SCAN_RECORDS = 100_000  # lines read per lookup at most (about 70 MB of records)
NEWEST_FILES = 64  # files read per lookup at most: every worker's current file and recent ones
VERIFY_BYTES = 512 << 20  # a larger log is left to `openkms audit verify`
VERIFY_INTERVAL = 30.0  # seconds a verification's result is reused
PAGE_SIZE_LIMIT = 100
FILTER_LIMIT = 256
_CHUNK = 1 << 16
_TRUNCATED = "the line is truncated"
_TIME = b'"time":"'


@dataclass(frozen=True, slots=True)
class AuditQuery:
    key_id: str = ""  # the record's key id, exactly
    action: str = ""  # the action, exactly (case-insensitive), e.g. CreateKey, ram:CreateUser
    principal: str = ""  # a part of the principal's ARN, e.g. user/alice
    result: str = ""  # "" any, "Success", "Failure" (anything else), or an error Code exactly
    page: int = 1
    page_size: int = 20


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time: str
    request_id: str
    principal: str
    action: str
    result: str
    http_status: int | None
    door: str
    key_id: str | None
    resource: str | None
    source_ip: str | None
    region: str | None
    reason: str | None

    @property
    def succeeded(self) -> bool:
        return self.result == "Success"


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: tuple[AuditRecord, ...]
    page: int
    page_size: int
    has_more: bool  # a further page holds at least one record
    exhausted: bool  # the scan stopped at its bound: older records were not searched
    scanned: int  # lines read


@dataclass(frozen=True, slots=True)
class BrokenFile:
    file: str
    line: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class LogVerification:
    """`ok` None: not checked (no log here, or too large for the console)."""

    ok: bool | None
    files: int
    records: int
    broken: tuple[BrokenFile, ...]
    notes: tuple[str, ...]
    checked_at: datetime


class AuditLogService:
    def __init__(
        self,
        directory: Path | None,
        heads: HeadStore | None,
        chain_key: Callable[[], bytes | None],
        clock: Clock,
        *,
        scan_records: int = SCAN_RECORDS,
        verify_bytes: int = VERIFY_BYTES,
        verify_interval: float = VERIFY_INTERVAL,
    ) -> None:
        self._directory = directory
        self._heads = heads
        self._chain_key = chain_key
        self._clock = clock
        self._scan_records = scan_records
        self._verify_bytes = verify_bytes
        self._verify_interval = verify_interval
        self._lock = threading.Lock()
        self._verified: LogVerification | None = None

    # -- records ------------------------------------------------------------------------------------
    def lookup(self, ctx: RequestContext, query: AuditQuery) -> Outcome[AuditPage]:
        resource = self._authorize(ctx)
        _check(query)
        account = ctx.principal.account_id
        wanted = (query.page - 1) * query.page_size
        matches: list[AuditRecord] = []
        budget = _Budget(self._scan_records)
        # Every line of the newest files, newest first across files (each file is in time order), so
        # the scan's bound falls on the oldest lines whichever worker wrote them.
        newest_first = heapq.merge(
            *(_lines_of(path, account, budget) for path in self._newest_files()),
            key=lambda entry: entry[0],
            reverse=True,
        )
        for _time, record in newest_first:
            if record is not None and _matches(record, query):
                matches.append(record)
                if len(matches) > wanted + query.page_size:
                    break
        page = AuditPage(
            tuple(matches[wanted : wanted + query.page_size]),
            query.page,
            query.page_size,
            has_more=len(matches) > wanted + query.page_size,
            exhausted=budget.left <= 0,
            scanned=budget.used,
        )
        return Outcome(page, resource)

    def _newest_files(self) -> list[Path]:
        if self._directory is None or not self._directory.is_dir():
            return []
        stamped = []
        for path in self._directory.glob("*.jsonl"):
            try:
                stamped.append((path.stat().st_mtime, path.name, path))
            except OSError:
                continue  # removed meanwhile
        stamped.sort(reverse=True)
        return [path for _mtime, _name, path in stamped[:NEWEST_FILES]]

    # -- verification -------------------------------------------------------------------------------
    def verification(self, ctx: RequestContext, *, fresh: bool = False) -> Outcome[LogVerification]:
        """The log's verification: the last one when it is recent (or `fresh` was asked for within the
        interval, which would let a client make the server re-read the log at will)."""
        resource = self._authorize(ctx)
        with self._lock:
            last = self._verified
            now = self._clock.now()
            age = None if last is None else (now - last.checked_at).total_seconds()
            if last is None or age is None or age >= self._verify_interval or (fresh and age >= 5.0):
                last = self._verified = self._verify()
        return Outcome(last, resource)

    def _verify(self) -> LogVerification:
        now = self._clock.now()
        directory = self._directory
        if directory is None or not directory.is_dir():
            return LogVerification(None, 0, 0, (), ("no audit log is kept in this data dir",), now)
        size = sum(_size(path) for path in directory.glob("*.jsonl"))
        if size > self._verify_bytes:
            note = (
                f"the log holds {size >> 20} MiB, more than the console verifies "
                f"({self._verify_bytes >> 20} MiB): run `openkms audit verify`"
            )
            return LogVerification(None, 0, 0, (), (note,), now)
        key = self._chain_key()
        notes = [] if key is not None else ["the store is sealed: keyed hashes are not checked"]
        heads = None
        if self._heads is not None:
            try:
                heads = self._heads.heads()
            except Exception as exc:  # a store not migrated yet: the chains are still checked
                notes.append(f"sealed heads not read ({type(exc).__name__})")
        reports = verify_directory(directory, key=key, heads=heads)
        if any(_still_writing(path, report) for path, report in reports):
            reports = verify_directory(directory, key=key, heads=heads)  # a line was being written
        broken = tuple(
            BrokenFile(path.name, report.first_bad_line, report.reason or "broken")
            for path, report in reports
            if not report.ok
        )
        for path, report in reports:
            notes.extend(f"{path.name}: {note}" for note in report.notes if "legacy" not in note)
        return LogVerification(
            not broken,
            len(reports),
            sum(report.records for _path, report in reports),
            broken,
            tuple(dict.fromkeys(notes)),
            now,
        )

    def _authorize(self, ctx: RequestContext) -> Resource:
        resource = Resource(f"acs:actiontrail:*:{ctx.principal.account_id}:*")
        authorize_own(ctx, LOOKUP_ACTION, resource.arn)
        return resource


class _Budget:
    """Lines every file of one lookup may still read, shared by them."""

    def __init__(self, lines: int) -> None:
        self.left = lines
        self.used = 0

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        self.used += 1
        return True


def _check(query: AuditQuery) -> None:
    if not 1 <= query.page <= 10_000:
        raise InvalidArgument("The page number must be between 1 and 10000.")
    if not 1 <= query.page_size <= PAGE_SIZE_LIMIT:
        raise InvalidArgument(f"The page size must be between 1 and {PAGE_SIZE_LIMIT}.")
    for value in (query.key_id, query.action, query.principal, query.result):
        if len(value) > FILTER_LIMIT:
            raise InvalidArgument(f"A filter is at most {FILTER_LIMIT} characters.")


def _matches(record: AuditRecord, query: AuditQuery) -> bool:
    if query.key_id and record.key_id != query.key_id:
        return False
    if query.action and record.action.lower() != query.action.lower():
        return False
    if query.principal and query.principal not in record.principal:
        return False
    if query.result == "Success":
        return record.succeeded
    if query.result == "Failure":
        return not record.succeeded
    return not query.result or record.result == query.result


def _lines_of(path: Path, account: str, budget: _Budget) -> Iterator[tuple[bytes, AuditRecord | None]]:
    """(time, the record when it is the account's) of every line of one file, newest first, while
    the budget lasts. Other lines are not parsed: their time is found in the canonical JSON."""
    marker = b'"account_id":' + orjson.dumps(account) + b","
    for line in _lines_backwards(path):
        if not budget.take():
            return
        at = line.find(_TIME)
        time = line[at + len(_TIME) : at + len(_TIME) + 24] if at >= 0 else b""
        if marker not in line:
            yield time, None  # another account's, or none's (a sign-in attempt, the file's own records)
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield time, None  # the verification reports a broken line
            continue
        if isinstance(raw, dict) and raw.get("account_id") == account:
            yield time, _record(raw)
        else:
            yield time, None


def _record(raw: dict[str, object]) -> AuditRecord:
    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) else None

    status = raw.get("http_status")
    return AuditRecord(
        time=text("time") or "",
        request_id=text("request_id") or "",
        principal=text("principal") or "",
        action=text("action") or "",
        result=text("result") or "",
        http_status=status if type(status) is int else None,
        door=text("door") or "rpc",
        key_id=text("key_id"),
        resource=text("resource"),
        source_ip=text("source_ip"),
        region=text("region"),
        reason=text("reason"),
    )


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The file's complete lines, last first (a partial last line, being written, is left out)."""
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        end = handle.seek(0, os.SEEK_END)
        rest = b""
        tail = True  # what follows the last newline is not a complete line
        while end > 0:
            start = max(0, end - _CHUNK)
            handle.seek(start)
            data = handle.read(end - start) + rest
            end = start
            if tail:
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = b""
                    continue
                data, tail = data[:cut], False
            lines = data.split(b"\n")
            rest = lines.pop(0) if start > 0 else b""
            for line in reversed(lines):
                if line:
                    yield line


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _still_writing(path: Path, report: VerifyReport) -> bool:
    return (
        not report.ok
        and report.reason is not None
        and report.reason.startswith(_TRUNCATED)
        and wal_path(path).exists()
    )
