"""The audit write-ahead ring: what makes an audit record durable before its answer leaves (P11).

Owns the ring file next to each audit log (`<log>.wal`) and the recovery that copies acknowledged
records from a ring into its log after a crash. It stores only audit lines, which never hold secrets.

Why a ring: making an appended line durable (`fsync` of a growing file) also commits the file's new
size through the filesystem journal, two device flushes per batch on ext4. The ring is written once
in full when it is created, so a batch overwrites blocks that already exist and `fdatasync` has only
the data to flush. On the reference VM a 10 KB write plus sync took 326 us (136 us of CPU) appended
and fsynced, 161 us (67 us of CPU) overwritten and fdatasynced; full-path Encrypt went up about 12%
in paired runs (bench/README.md). The log itself stays a plain, append-only JSON-lines file that log
shippers can tail; it is synced every second, and before the ring wraps over anything the log might
not have on disk yet.

Ring format: `size` bytes, zero-filled at creation. Entries follow each other from offset 0; each is
a 16-byte header (magic `OKAW`, lap u32, payload length u32, CRC-32 of lap, length and payload) and
the payload, the exact bytes appended to the log. An entry that does not fit before the end starts a
new lap at offset 0. Recovery reads the entries of the newest lap from offset 0 and stops at the first
header that is not one of them (zeros, an older lap, or a torn write, which was never acknowledged).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

WAL_SUFFIX = ".wal"
DEFAULT_WAL_BYTES = 16 << 20  # at 10k records/s of ~700 bytes, about 2 s of records per lap

_MAGIC = b"OKAW"
_TAIL_BYTES = 1 << 20
_HEADER = struct.Struct("<4sIII")
_LAP_AND_LENGTH = struct.Struct("<II")

_log = logging.getLogger(__name__)


def wal_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + WAL_SUFFIX)


def _checksum(lap: int, payload: bytes | bytearray | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_LAP_AND_LENGTH.pack(lap, len(payload))))


class AuditWal:
    """An open ring, owned by one audit sink. Not thread-safe: the sink's writer thread uses it alone."""

    def __init__(self, path: Path, size: int = DEFAULT_WAL_BYTES) -> None:
        """Create `path` (it must not exist), zero-filled and durable, and lock it as ours.

        The ring is prepared under a temporary name, locked, and only then linked to `path`, so a
        recovery never finds an unlocked ring of a live writer (and never takes over a new one)."""
        if size < 4 * _HEADER.size:
            raise ValueError("the audit ring is too small")
        self.path = path
        self.size = size
        self._lap = 1
        self._position = 0
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        self._fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            # Held while the sink lives: recovery leaves a ring alone while its writer is alive.
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            zeros = bytes(min(size, 1 << 20))
            for offset in range(0, size, len(zeros)):
                os.pwrite(self._fd, zeros[: min(len(zeros), size - offset)], offset)
            os.fsync(self._fd)
            os.link(temporary, path)  # fails if a ring is already there: it must be recovered first
            sync_directory(path.parent)
        except BaseException:
            os.close(self._fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    @property
    def capacity(self) -> int:
        """The largest payload the ring can take."""
        return self.size - _HEADER.size

    def fits(self, length: int) -> bool:
        """Whether a payload of `length` bytes can go into the ring at all."""
        return length <= self.capacity

    def append(self, payload: bytes | bytearray | memoryview, before_wrap: Callable[[], None]) -> None:
        """Write `payload` as the next entry and make it durable. `before_wrap` runs before the ring
        starts overwriting its oldest entries: it must make everything written so far durable in the
        log. Raises OSError (the sink then fails closed) or ValueError if the payload does not fit."""
        if not self.fits(len(payload)):
            raise ValueError("the batch is larger than the audit ring")
        end = self._position + _HEADER.size + len(payload)
        if end > self.size:
            before_wrap()
            self._lap += 1
            self._position = 0
            end = _HEADER.size + len(payload)
        header = _HEADER.pack(_MAGIC, self._lap, len(payload), _checksum(self._lap, payload))
        written = os.pwritev(self._fd, [header, payload], self._position)
        if written != _HEADER.size + len(payload):
            raise OSError(f"short write to the audit ring: {written} bytes")
        os.fdatasync(self._fd)
        self._position = end

    def close(self, *, remove: bool) -> None:
        """Close the ring; `remove` once the log holds every record durably (a clean close)."""
        if self._fd < 0:
            return
        if remove:
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1


def ring_entries(data: bytes) -> Iterator[bytes]:
    """The payloads of the newest lap of a ring's bytes, in the order they were written."""
    view = memoryview(data)
    position, lap = 0, None
    while position + _HEADER.size <= len(view):
        magic, entry_lap, length, checksum = _HEADER.unpack_from(view, position)
        if magic != _MAGIC or (lap is not None and entry_lap != lap):
            return
        start = position + _HEADER.size
        payload = view[start : start + length]
        if len(payload) != length or _checksum(entry_lap, payload) != checksum:
            return  # a torn entry: its batch was never acknowledged
        lap = entry_lap
        yield bytes(payload)
        position = start + length


@dataclass(frozen=True, slots=True)
class Recovered:
    log: Path
    records: int  # records copied from the ring into the log
    complete: bool  # False: the ring holds records the log could not take (a broken chain); kept


def recover(log_path: Path) -> Recovered | None:
    """Copy into `log_path` the records its ring holds and the log lacks, then delete the ring.

    None if there is no ring, or its writer still holds it (a live server). A log that ends in a
    partial line (cut off by the crash) loses that partial line first; a record that was acknowledged
    is in the ring whole, so nothing acknowledged is lost. The ring is kept (`complete` False) when
    it cannot be applied: its records do not continue the log, or records it holds that the log
    should already have are not there (pages the disk lost).
    """
    ring = wal_path(log_path)
    try:
        fd = os.open(ring, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # its sink is alive
        if not _still_named(fd, ring):
            return None  # recovered and replaced meanwhile: what is there now is someone else's
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        try:
            copied, complete = _copy_missing(log_path, list(ring_entries(data)), 2 * len(data) + _TAIL_BYTES)
        except (OSError, ValueError, KeyError) as exc:
            _log.error("audit ring of %s could not be recovered (%s); kept", log_path, exc)
            return Recovered(log_path, 0, False)
        if complete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ring)
        return Recovered(log_path, copied, complete)
    finally:
        os.close(fd)


def _remove_abandoned(temporary: Path) -> None:
    """A ring whose creation was cut short (its creator holds its lock until it is linked)."""
    try:
        fd = os.open(temporary, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    except BlockingIOError:
        pass  # being created right now
    finally:
        os.close(fd)


def _still_named(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def recover_directory(directory: Path) -> list[Recovered]:
    """`recover` for every ring left in an audit folder (a server stopped without closing its logs)."""
    if not directory.is_dir():
        return []
    for temporary in directory.glob(f".*.jsonl{WAL_SUFFIX}.*"):
        _remove_abandoned(temporary)
    found = []
    for ring in sorted(directory.glob(f"*.jsonl{WAL_SUFFIX}")):
        result = recover(ring.with_name(ring.name.removesuffix(WAL_SUFFIX)))
        if result is not None:
            found.append(result)
    return found


def _copy_missing(log_path: Path, payloads: list[bytes], window: int) -> tuple[int, bool]:
    """Append the ring's records past the log's last one. `window`: how much of the log's end can hold
    the ring's older records (a ring's worth, plus one batch that reached the log but not the ring).
    Decides before it changes anything: a ring that cannot be applied leaves the log as it was."""
    fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        cut, last_seq, last_hash = _last_record(fd)
        present = _tail_lines(fd, cut, window)
        missing = bytearray()
        copied = 0
        for line in (line for payload in payloads for line in payload.splitlines(keepends=True)):
            record = orjson.loads(line)
            seq = record.get("seq") if isinstance(record, dict) else None
            if not isinstance(seq, int):
                raise ValueError("a ring line is not a record")
            if seq <= last_seq:
                if line not in present:  # the log should hold this line: the disk lost some of it
                    _log.error("audit log %s lacks record %d that its ring holds; ring kept", log_path, seq)
                    return 0, False
                continue
            if seq != last_seq + 1 or (last_seq >= 0 and record.get("prev") != last_hash):
                _log.error("audit ring %s does not continue its log at seq %d; kept", log_path, seq)
                return 0, False
            missing += line
            last_seq, last_hash = seq, record.get("hash")
            copied += 1
        if cut != os.fstat(fd).st_size:
            os.ftruncate(fd, cut)  # the partial last line: never acknowledged (the ring has all that was)
        if missing:
            os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(missing)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
        return copied, True
    finally:
        os.close(fd)


def _tail_lines(fd: int, end: int, length: int) -> set[bytes]:
    """The complete lines among the `length` bytes before `end` (each with its newline)."""
    start = max(0, end - length)
    lines = os.pread(fd, end - start, start).splitlines(keepends=True)
    if start and lines:
        lines = lines[1:]  # the first may be cut
    return set(lines)


def _last_record(fd: int) -> tuple[int, int, str | None]:
    """(end of the last complete line, its record's seq, its hash), or (0, -1, None) for no line.
    Reads only the file's tail; raises ValueError if the last line is not a record."""
    size = os.fstat(fd).st_size
    tail_size = min(size, _TAIL_BYTES)
    tail = os.pread(fd, tail_size, size - tail_size) if size else b""
    cut = tail.rfind(b"\n") + 1  # within the tail; 0: no complete line in it
    if cut == 0 and tail_size < size:
        raise ValueError("the last audit record is too long to find")
    if cut == 0:
        return 0, -1, None
    start = tail.rfind(b"\n", 0, cut - 1) + 1
    if start == 0 and tail_size < size:
        raise ValueError("the last audit record is too long to find")
    record = orjson.loads(tail[start:cut])
    if not isinstance(record, dict) or type(record.get("seq")) is not int:
        raise ValueError("the last audit line is not a record")
    return size - tail_size + cut, int(record["seq"]), str(record["hash"])


def sync_directory(directory: Path) -> None:
    """fsync a folder, so that a file created or renamed in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
