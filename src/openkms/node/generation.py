"""The change generation: a counter every worker process of a node reads to learn that cached key
records, policies or access keys went stale.

Owns the counter only. A writer bumps it after committing a change; a reader compares it with the
value its caches were filled under and drops them when it moved (any difference, not just "greater":
a recreated file starts again at 0). It never carries data, and it never replaces the documented
cache staleness bound across nodes; it only makes one node's workers converge at once.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import Protocol

from openkms.node.shared_file import Fit, SharedFile

# File layout, little-endian: magic "OKMSGENR" 8 B, format version u32, 4 B zero, counter u64 at 16.
_MAGIC = b"OKMSGENR"
_VERSION = 1
_HEADER = struct.Struct("<8sI4x")
_COUNTER_OFFSET = 16
_FILE_SIZE = 24
_COUNTER = struct.Struct("<Q")


class Generation(Protocol):
    # How many of the bumps this process made were for changes it made itself (not announced by
    # another node): a request that moved it changed the store (process-local, not shared).
    made_here: int

    def current(self) -> int:
        """The counter now; cheap enough to read on every request."""
        ...

    def bump(self, *, here: bool = True) -> int:
        """Increment the counter atomically; returns the new value. `here`: for a change this process
        made (False: one another node announced)."""
        ...


class ChangeBarrier(Protocol):
    """Several nodes: after this process committed a change, wait (blocking) until every live worker
    of every node has applied it, or a bound passed; True when all had."""

    def wait(self) -> bool: ...


class LocalGeneration:
    """The counter for a single process (tests, one worker)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()
        self.made_here = 0

    def current(self) -> int:
        return self._value

    def bump(self, *, here: bool = True) -> int:
        with self._lock:
            self._value += 1
            self.made_here += here
            return self._value


class ChangeGeneration:
    """The counter in a small memory-mapped file shared by every worker process of the node.

    `current()` is a plain aligned 8-byte load from the shared mapping, no lock and no system call.
    `bump()` increments under the file's flock, so concurrent bumps from any process are never lost.
    """

    def __init__(self, path: Path) -> None:
        self._file = SharedFile(
            path,
            size=_FILE_SIZE,
            header_size=_HEADER.size,
            new_header=lambda: _HEADER.pack(_MAGIC, _VERSION),
            fit=_fit,
        )
        self._map = self._file.map
        self._read = _COUNTER.unpack_from
        self.made_here = 0

    def current(self) -> int:
        value: int = self._read(self._map, _COUNTER_OFFSET)[0]
        return value

    def bump(self, *, here: bool = True) -> int:
        self._file.acquire()
        try:
            self.made_here += here
            value: int = (_COUNTER.unpack_from(self._map, _COUNTER_OFFSET)[0] + 1) & 0xFFFF_FFFF_FFFF_FFFF
            _COUNTER.pack_into(self._map, _COUNTER_OFFSET, value)
            return value
        finally:
            self._file.release()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ChangeGeneration:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fit(header: bytes, file_size: int) -> Fit:
    if len(header) < _HEADER.size or file_size < _FILE_SIZE:
        return Fit.UNUSABLE
    magic, version = _HEADER.unpack(header)
    return Fit.EXACT if (magic, version) == (_MAGIC, _VERSION) else Fit.UNUSABLE
