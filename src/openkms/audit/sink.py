"""Audit sinks: where audit events are written before an answer may leave.

Owns the JSON-lines record format and its hash chain, and the group commit that makes appends cheap.
Fails closed: an event that cannot be written raises `AuditUnavailable`, and after a failed write the
sink stays broken (`check()` raises) until the process opens a new one. Writes only what an
`AuditEvent` holds, so it never writes plaintext, data keys or secrets.

Record format, one line per record, compact JSON with sorted keys (`canonical_json`):
- the event's fields, plus `seq` (0, 1, 2, ... = line number - 1), `prev` (the previous record's
  `hash`, 64 zeros on the first line) and `hash` (hex SHA-256 of the canonical JSON of the record
  without `hash`);
- each time a sink opens a file it first writes an `"action": "AuditLogOpened"` record naming `host`,
  `pid` and `time`; it is not an `AuditEvent`. A file that already has records is continued (seq and
  chain carry on), and one that ends in a partial line is refused rather than extended (unless its
  ring is there: recovery then cuts the partial line and restores the ring's records first).
  The genesis record also names the writer's `slot` and, when one is known, the last `previous_file`
  and `previous_hash` of the same slot, so a deleted file breaks a link.
- once the server is unsealed it gives the sink its chain key (`use_chain_key`): the sink writes an
  `"action": "AuditChainKeyed"` record, and from that record on `hash` is HMAC-SHA256 under the key,
  so nobody without the server's keys can recompute the chain after an edit;
- at most every `HEAD_INTERVAL` seconds the last durable record's (seq, hash) is published to a
  `HeadStore` (the database), out of the log's reach; `openkms audit verify` compares against it.
Every record is bounded: a record longer than `RECORD_LIMIT` bytes is cut down (`bounded_record`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from openkms.audit.event import AuditEvent, JsonScalar, audit_time, bounded_record
from openkms.audit.wal import DEFAULT_WAL_BYTES, AuditWal, recover, sync_directory, wal_path
from openkms.domain.audit_heads import FileLink, Head, HeadStore
from openkms.errors import AuditUnavailable
from openkms.metrics import AUDIT_BATCH_RECORDS, AUDIT_SYNC_SECONDS

GENESIS_ACTION = "AuditLogOpened"
KEYED_ACTION = "AuditChainKeyed"  # from this record on, every `hash` is an HMAC under the chain key
RECORD_LIMIT = 2048  # bytes: a longer record is cut down field by field (`bounded_record`)
HEAD_INTERVAL = 1.0  # seconds between publications of the file's sealed head
ZERO_HASH = "0" * 64

_TAIL_BYTES = 1 << 16
_SORTED = orjson.OPT_SORT_KEYS
_SORTED_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE

_log = logging.getLogger(__name__)

# Where "hash" goes in an event record's sorted keys: right before "http_status" (checked below).
_HASH_SLOT = b',"http_status":'
_EVENT_KEYS = sorted((*AuditEvent._fields, "seq", "prev", "hash"))
assert _EVENT_KEYS[_EVENT_KEYS.index("hash") + 1] == "http_status", "update _HASH_SLOT"

GATHER_ITERATIONS = 3  # event-loop iterations a flush waits for more records (a few microseconds idle)


def canonical_json(record: Mapping[str, JsonScalar]) -> bytes:
    """The record's bytes as hashed and written: compact, keys sorted, UTF-8, no newline."""
    return orjson.dumps(record, option=_SORTED)


def record_hash(record: Mapping[str, JsonScalar]) -> str:
    """The `hash` field of a record: hex SHA-256 of its canonical JSON without `hash`."""
    return hashlib.sha256(canonical_json({k: v for k, v in record.items() if k != "hash"})).hexdigest()


class AuditSink(Protocol):
    async def append(self, event: AuditEvent) -> None:
        """Return once the record is written (durably, per the sink's mode); else raise AuditUnavailable."""
        ...

    def check(self) -> None:
        """Cheap pre-flight: raise AuditUnavailable if the sink is known broken or closed."""
        ...

    def use_chain_key(self, key: bytes) -> None:
        """Key the record chain from now on (the server was unsealed); sinks without a chain ignore it."""
        ...

    async def aclose(self) -> None: ...


class JsonlAuditSink:
    """One hash-chained JSON-lines file per server process.

    With `fsync` (the default), appends are group-committed: `append` chains its record
    synchronously on the event loop, queues the line and waits. A single flusher writes everything
    queued with one `os.write` to the file and one durable append to the file's ring (`audit/wal.py`;
    without a ring, one `os.fsync` of the file), on a dedicated thread, while new appends queue up
    for the next batch. A background thread fsyncs the file itself at least every `SYNC_INTERVAL`
    seconds; after a crash, `openkms serve` copies what the file lacks from the ring before serving.
    Under load, batches form by themselves; before taking one, the flusher lets the
    loop run `GATHER_ITERATIONS` more iterations so that requests already arriving join it. Use one
    event loop at a time: if the loop changes (tests), the next append starts a new flusher in the
    running loop and lines still queued are written by it.

    Without `fsync`, `append` writes its line to the file (the operating system) before it returns,
    so a record survives a crash of the process, and a background thread fsyncs what was written at
    least every `SYNC_INTERVAL` seconds: a power loss can cost the records of that last interval.
    """

    SYNC_INTERVAL = 1.0

    def __init__(
        self,
        path: Path,
        *,
        fsync: bool = True,
        wal_bytes: int = DEFAULT_WAL_BYTES,
        slot: str | None = None,
        link: FileLink | None = None,
        heads: HeadStore | None = None,
    ) -> None:
        """Open (creating it 0600, O_APPEND) `path`. Give each server process its own file.

        With `fsync`, records are made durable through a ring next to the file (`audit/wal.py`);
        `wal_bytes` is its size, 0 for none (every batch then fsyncs the file itself). `slot` names the
        writer (a worker's index, `cli`), `link` the last record of the slot's previous file, and
        `heads` where the file's sealed head is published."""
        self.path = path
        self._fsync = fsync
        self._failure: str | None = None
        self._closed = False
        self._wal: AuditWal | None = None
        if fsync and path.is_file() and wal_path(path).exists():
            try:
                recovered = recover(path)
            except OSError as exc:
                raise AuditUnavailable("The audit log's ring cannot be recovered.") from exc
            if recovered is None:
                raise AuditUnavailable("The audit log is written by another process.")
            if not recovered.complete:
                raise AuditUnavailable("The audit log's ring cannot be applied to it.")
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditUnavailable("The audit log cannot be opened.") from exc
        try:
            self._size, self._seq, self._prev = _resume(self._fd)
            self._durable_size = self._size  # what was in the file when it was opened
            if fsync and self._size == 0 and stat.S_ISREG(os.fstat(self._fd).st_mode):
                sync_directory(path.parent)  # the new file's name must survive a crash too
        except (OSError, ValueError) as exc:
            os.close(self._fd)
            raise AuditUnavailable("The audit log cannot be continued.") from exc
        if fsync and wal_bytes and stat.S_ISREG(os.fstat(self._fd).st_mode):
            try:
                self._wal = AuditWal(wal_path(path), wal_bytes)
            except (OSError, ValueError) as exc:
                os.close(self._fd)
                raise AuditUnavailable("The audit log's ring cannot be created.") from exc
        # One growing buffer rather than a list of line objects: keeping thousands of ~600-byte
        # objects alive until the batch is written costs several microseconds each in malloc.
        self._pending = bytearray()
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openkms-audit")
        self._syncer: threading.Thread | None = None
        self._stop_syncing = threading.Event()
        self._sync_lock = threading.Lock()
        self.appends = 0  # records queued by `append`
        self.batches = 0  # successful write (+ sync) calls
        if self._wal is not None:
            self._start_syncer()
        self._open_line(slot, link, heads)

    def _open_line(self, slot: str | None, link: FileLink | None, heads: HeadStore | None) -> None:
        """Queue the genesis record (naming the slot and its previous file); start publishing heads."""
        # The keyed chain's HMAC, prepared once and copied per record: the one-shot `hmac.digest`
        # looks the digest up again on every call (about a microsecond more with OpenSSL 3).
        self._chain_mac: hmac.HMAC | None = None
        self._next_key: bytes | None = None  # given by use_chain_key, applied on the loop
        self._heads = heads
        self._slot = slot
        self._durable_head: tuple[int, str] | None = None  # (seq, hash) of the last durable record
        self._published: tuple[int, str] | None = None
        self._publisher: threading.Thread | None = None
        self._stop_publishing = threading.Event()
        genesis: dict[str, JsonScalar] = {
            "action": GENESIS_ACTION,
            "time": audit_time(datetime.now(UTC)),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if slot is not None:
            genesis["slot"] = slot
            genesis["previous_file"] = None if link is None else link.file
            genesis["previous_hash"] = None if link is None else link.hash
        self._queue(genesis)
        if heads is not None:
            self._publisher = threading.Thread(
                target=self._publish_periodically, name="openkms-audit-head", daemon=True
            )
            self._publisher.start()

    def use_chain_key(self, key: bytes) -> None:
        """Key the chain from the next record on (called once the server is unsealed, from any
        thread: the next record queued on the loop applies it). The marker record it writes is
        itself keyed, so removing it breaks the chain. Later calls do nothing."""
        if self._chain_mac is None and self._next_key is None:
            self._next_key = bytes(key)

    def _apply_chain_key(self) -> None:
        assert self._next_key is not None
        self._chain_mac, self._next_key = hmac.new(self._next_key, digestmod=hashlib.sha256), None
        self._queue({"action": KEYED_ACTION, "time": audit_time(datetime.now(UTC))})

    @property
    def failure(self) -> str | None:
        """Why the sink broke, for operators' logs (never sent to callers); None while healthy."""
        return self._failure

    def check(self) -> None:
        if self._failure is not None or self._closed:
            raise AuditUnavailable()

    async def append(self, event: AuditEvent) -> None:
        self.check()
        loop = asyncio.get_running_loop()
        try:
            self._queue_event(event)
        except orjson.JSONEncodeError as exc:
            raise AuditUnavailable() from exc
        self.appends += 1
        if not self._fsync:
            self._write_through()
            return
        waiter = loop.create_future()
        self._waiters.append(waiter)
        if self._loop is not loop or self._flusher is None or self._flusher.done():
            self._start_flusher(loop)
        await waiter

    async def aclose(self) -> None:
        """Write what is queued, then close the file. Appends after this raise AuditUnavailable."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        flusher = self._flusher
        if flusher is not None and not flusher.done() and self._loop is loop:
            await asyncio.wait([flusher])
        if self._pending and self._failure is None:
            self._start_flusher(loop)
            assert self._flusher is not None
            await asyncio.wait([self._flusher])
        self._stop_syncing.set()
        synced = False
        if self._syncer is not None:
            await asyncio.to_thread(self._syncer.join)
            if self._failure is None:
                try:
                    await loop.run_in_executor(self._executor, self._sync_file)
                    synced = True
                except OSError as exc:
                    _log.error("audit sink %s: final fsync failed: %s", self.path, exc)
        if self._wal is not None:
            # The ring may go only once the file holds every record durably; otherwise it stays for
            # the recovery that `openkms serve` runs before its workers start.
            remove = synced and self._failure is None
            await loop.run_in_executor(self._executor, functools.partial(self._wal.close, remove=remove))
        if self._publisher is not None:
            self._stop_publishing.set()
            await asyncio.to_thread(self._publisher.join)
            if synced or self._wal is None:
                await asyncio.to_thread(self._publish_head)
        await loop.run_in_executor(self._executor, os.close, self._fd)
        self._executor.shutdown(wait=False)

    def _write_through(self) -> None:
        """Write what is queued now, on the event loop (a page-cache write takes microseconds)."""
        batch, self._pending = self._pending, bytearray()
        head = (self._seq - 1, self._prev)
        try:
            self._write(batch)
        except OSError as exc:
            raise AuditUnavailable() from exc
        self._durable_head = head
        if self._syncer is None:
            self._start_syncer()

    def _start_syncer(self) -> None:
        self._syncer = threading.Thread(
            target=self._sync_periodically, name="openkms-audit-sync", daemon=True
        )
        self._syncer.start()

    def _sync_periodically(self) -> None:
        """Background fsync of the file (write-through mode, and behind the ring); a failure breaks
        the sink like a failed write."""
        synced = self._durable_size
        while not self._stop_syncing.wait(self.SYNC_INTERVAL):
            size = self._size
            if size == synced:
                continue
            try:
                self._sync_file()
            except OSError as exc:
                _log.error("audit sink %s is broken: %s", self.path, exc)
                return
            synced = size

    def _queue(self, record: dict[str, JsonScalar]) -> None:
        """Chain `record` after the previous one and queue its line. Runs on the event loop: keep cheap."""
        if self._next_key is not None:
            self._apply_chain_key()
        record["seq"] = self._seq
        record["prev"] = self._prev
        digest = self._digest(orjson.dumps(record, option=_SORTED))
        record["hash"] = digest
        self._pending += orjson.dumps(record, option=_SORTED_LINE)
        self._seq += 1
        self._prev = digest

    def _queue_event(self, event: AuditEvent) -> None:
        """`_queue` for an event, serialising it once: the hash is spliced into the canonical bytes
        of the record without it. A string value cannot hold `,"http_status":` (its quotes would be
        escaped), so the first occurrence is the key's; the line is byte-for-byte `_queue`'s."""
        if self._next_key is not None:
            self._apply_chain_key()
        record = event.to_json_dict()
        record["seq"] = self._seq
        record["prev"] = self._prev
        body = orjson.dumps(record, option=_SORTED)
        if len(body) > RECORD_LIMIT:  # only what a client sent can make it this long: cut it down
            record = bounded_record(record)
            body = orjson.dumps(record, option=_SORTED)
        digest = self._digest(body)
        cut = body.index(_HASH_SLOT)
        pending = self._pending
        pending += body[:cut]
        pending += b',"hash":"'
        pending += digest.encode("ascii")
        pending += b'"'
        pending += body[cut:]
        pending += b"\n"
        self._seq += 1
        self._prev = digest

    def _digest(self, body: bytes) -> str:
        mac = self._chain_mac
        if mac is None:
            return hashlib.sha256(body).hexdigest()
        keyed = mac.copy()
        keyed.update(body)
        return keyed.hexdigest()

    def _publish_periodically(self) -> None:
        while not self._stop_publishing.wait(HEAD_INTERVAL):
            self._publish_head()

    def _publish_head(self) -> None:
        """Hand the last durable record's (seq, hash) to the head store; a failure is logged and
        retried (the log itself stays authoritative; verify then sees an older head)."""
        head, heads = self._durable_head, self._heads
        if head is None or heads is None or head == self._published:
            return
        try:
            heads.publish(Head(self.path.name, self._slot or "", head[0], head[1]))
        except Exception as exc:  # the database may be away for a moment
            _log.error("audit sink %s: sealed head not published: %s", self.path, exc)
            return
        self._published = head

    def _start_flusher(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            # Waiters of a previous loop cannot be woken from this one; their lines stay queued.
            self._waiters = [waiter for waiter in self._waiters if waiter.get_loop() is loop]
            self._loop = loop
        self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # Let the loop run a few more iterations before taking the batch: requests already on the
            # wire are read, handled and queued, and share this fsync instead of waiting for the next.
            # Each fsync costs a thread round trip and kernel work; on the 2-core reference machine this
            # made batches about twice as large and full-path throughput about 11% higher (bench/README).
            for _ in range(GATHER_ITERATIONS):
                await asyncio.sleep(0)
            batch, self._pending = self._pending, bytearray()
            waiters, self._waiters = self._waiters, []
            head = (self._seq - 1, self._prev)
            try:
                # Shielded: cancelling the flusher (its loop is shutting down) must not cancel a write
                # that has not started, or the chain would lose these lines. The write goes ahead on
                # the thread; its callers are told it failed, which errs on the safe side.
                await asyncio.shield(loop.run_in_executor(self._executor, self._write, batch))
            except BaseException as exc:
                if not isinstance(exc, asyncio.CancelledError):
                    self._failure = self._failure or f"audit flush failed: {exc!r}"
                    self._pending = bytearray()
                for waiter in waiters + self._waiters:
                    if not waiter.done():
                        waiter.set_exception(AuditUnavailable())
                self._waiters = []
                if isinstance(exc, Exception):
                    return
                raise
            self._durable_head = head
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _write(self, data: bytearray) -> None:
        """Runs on the sink's thread, one batch at a time, in queue order."""
        if self._failure is not None:
            raise OSError(self._failure)
        started = time.perf_counter()
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                self._undo_partial_write()
                raise OSError(f"short write: {written} of {len(data)} bytes")
            self._size += written
            if self._fsync:
                wal = self._wal
                if wal is None:
                    self._sync_file()
                else:
                    # Durable in the ring; the file follows within SYNC_INTERVAL, and before the
                    # ring overwrites anything the file might not have on disk yet.
                    for chunk in _ring_chunks(data, wal):
                        wal.append(chunk, self._sync_file)
        except OSError as exc:
            self._failure = f"audit write failed: {exc}"
            _log.error("audit sink %s is broken: %s", self.path, exc)
            raise
        self.batches += 1
        if self._fsync:  # a group commit (write-through mode writes one record at a time, unsynced)
            AUDIT_SYNC_SECONDS.observe(time.perf_counter() - started)
            AUDIT_BATCH_RECORDS.observe(data.count(b"\n"))

    def _sync_file(self) -> None:
        """fsync the file; raises OSError, and the sink is broken, if it or any earlier one failed.

        One at a time: Linux reports a writeback error to one fsync only, so a second, concurrent
        caller could see success for pages that were lost (and the ring would wrap over them)."""
        with self._sync_lock:
            if self._failure is not None:
                raise OSError(self._failure)
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failure = self._failure or f"audit fsync failed: {exc}"
                raise

    def _undo_partial_write(self) -> None:
        """Cut a torn line off so the file still verifies. The sink stays broken regardless."""
        try:
            if stat.S_ISREG(os.fstat(self._fd).st_mode):
                os.ftruncate(self._fd, self._size)
        except OSError as exc:
            _log.error("audit sink %s could not remove a partial record: %s", self.path, exc)


def _ring_chunks(data: bytearray, wal: AuditWal) -> list[memoryview]:
    """`data` (whole lines) in pieces the ring can take, each ending at a line's end. A batch larger
    than the ring is rare (a disk stall under heavy load); a single line larger than it is refused."""
    view = memoryview(data)
    if wal.fits(len(data)):
        return [view]
    chunks, start = [], 0
    while start < len(data):
        end = len(data) if wal.fits(len(data) - start) else data.rfind(b"\n", start, start + wal.capacity) + 1
        if end <= start:
            raise OSError("an audit record is larger than the audit ring")
        chunks.append(view[start:end])
        start = end
    return chunks


def _resume(fd: int) -> tuple[int, int, str]:
    """(file size, next seq, last hash) of an existing file; raises ValueError on a torn tail."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
        return 0, 0, ZERO_HASH
    tail_size = min(status.st_size, _TAIL_BYTES)
    tail = os.pread(fd, tail_size, status.st_size - tail_size)
    if not tail.endswith(b"\n"):
        raise ValueError("the audit log ends in a partial record")
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    if len(last) == len(tail) - 1 and tail_size < status.st_size:
        raise ValueError("the last audit record is too long to find")
    record = orjson.loads(last)
    if not isinstance(record, dict):
        raise ValueError("the last audit record is not an object")
    seq, digest = record.get("seq"), record.get("hash")
    if type(seq) is not int or not isinstance(digest, str):
        raise ValueError("the last audit record has no seq or hash")
    return status.st_size, seq + 1, digest
