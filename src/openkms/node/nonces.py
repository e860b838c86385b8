"""Replay protection: which (access key, SignatureNonce) pairs this node has already accepted.

Owns the nonce tables: `MemoryNonceStore` for one process, `SharedNonceStore` for every worker process
of one node (one memory-mapped file). Fails closed: when an entry cannot be stored the request is
refused with `errors.Unavailable`, never accepted unchecked. Stores keyed fingerprints only, never
the nonces or access key ids themselves.

An entry is live while `now < expires_at`. The caller picks `expires_at` so that a replay after it is
refused anyway by the timestamp window. Times are compared in whole milliseconds. A clock that steps
backwards may let an already expired entry be overwritten sooner; the timestamp check still applies.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import struct
import sys
import threading
from pathlib import Path
from typing import Protocol

from openkms import errors
from openkms.node.shared_file import Fit, SharedFile

_FULL_MESSAGE = "replay cache is full"


class NonceStore(Protocol):
    def remember(self, access_key_id: str, nonce: str, expires_at: float, now: float) -> bool:
        """True if (access key, nonce) was not live and is now remembered until `expires_at`;
        False if it is a replay. Raises `errors.Unavailable` if it cannot be remembered."""
        ...


class MemoryNonceStore:
    """One process only (tests, a single worker). Bounded; expired entries are purged as time passes."""

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        self._max_entries = max_entries
        self._expiry: dict[tuple[str, str], float] = {}
        self._by_expiry: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def remember(self, access_key_id: str, nonce: str, expires_at: float, now: float) -> bool:
        entry = (access_key_id, nonce)
        with self._lock:
            self._purge(now)
            known = self._expiry.get(entry)
            if known is not None and now < known:
                return False
            if known is None and len(self._expiry) >= self._max_entries:
                raise errors.Unavailable(_FULL_MESSAGE)
            self._expiry[entry] = expires_at
            heapq.heappush(self._by_expiry, (expires_at, entry))
            return True

    def _purge(self, now: float) -> None:
        heap = self._by_expiry
        while heap and heap[0][0] <= now:
            expires_at, entry = heapq.heappop(heap)
            if self._expiry.get(entry) == expires_at:
                del self._expiry[entry]


# File layout, little-endian. The header fills the first page so the table starts page aligned.
#   0  magic "OKMSNONC"   8  format version u32   12  probe bound u32   16  slot count u64   24  key 32 B
#   4096 + 24 * i: slot i = fingerprint 16 B, expiry in epoch milliseconds u64 (0: never used)
_MAGIC = b"OKMSNONC"
_VERSION = 1
_HEADER = struct.Struct("<8sIIQ32s")
_HEADER_SIZE = 4096
_SLOT_SIZE = 24
_FINGERPRINT_SIZE = 16
_U64 = struct.Struct("<Q")
_EXPIRY_WORD = (_HEADER_SIZE + _FINGERPRINT_SIZE) // 8
assert _SLOT_SIZE == 3 * 8 and sys.byteorder == "little", "the u64 view assumes 24-byte slots, little-endian"


class SharedNonceStore:
    """A hash table in a memory-mapped file, shared by every worker process of the node.

    Open addressing with linear probing over a bounded window of `max_probe` slots starting at the
    fingerprint's home slot (wrapping at the end). A lookup reads the whole window in one slice, so
    expired entries need no tombstones: any slot in the window whose expiry has passed is free.
    An entry can only live inside its window, hence a window with no live match means "fresh", and a
    window with no free slot means the table is too full: `errors.Unavailable`, fail closed.
    Measured with the 64-slot window, the first window fills at about 55-60% live load, so size
    `slots` to at least twice the live entries expected (peak requests per second x entry lifetime).

    The fingerprint is blake2b-128 of access key id, NUL, nonce, keyed with a random key kept in the
    file header, so callers cannot aim many nonces at one window. The read-modify-write runs under
    the file's flock (released by the kernel if a process dies). Create/attach: see `shared_file`;
    a file with another slot count is attached as is while other workers use it, else recreated.
    """

    def __init__(self, path: Path, *, slots: int = 1 << 22, max_probe: int = 64) -> None:
        if slots < 1 or max_probe < 1:
            raise ValueError("slots and max_probe must be positive")
        self._want = (slots, min(max_probe, slots))
        self._file = SharedFile(
            path,
            size=_HEADER_SIZE + slots * _SLOT_SIZE,
            header_size=_HEADER.size,
            new_header=self._new_header,
            fit=self._fit,
        )
        _magic, _version, probe, file_slots, key = _HEADER.unpack_from(self._file.map, 0)
        self._slots: int = file_slots
        self._probe: int = probe
        self._hasher = hashlib.blake2b(digest_size=_FINGERPRINT_SIZE, key=key)
        self._map = self._file.map
        # The table as little-endian u64 words: slot i's expiry is word _EXPIRY_WORD + 3 * i.
        self._words = memoryview(self._map).cast("Q")

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def max_probe(self) -> int:
        return self._probe

    def close(self) -> None:
        self._words.release()  # the mapping cannot be closed while a view of it exists
        self._file.close()

    def __enter__(self) -> SharedNonceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def remember(self, access_key_id: str, nonce: str, expires_at: float, now: float) -> bool:
        hasher = self._hasher.copy()  # cheaper than keying a new blake2b each call
        hasher.update(f"{access_key_id}\0{nonce}".encode("utf-8", "surrogatepass"))
        fingerprint = hasher.digest()
        slots, mapped, words = self._slots, self._map, self._words
        home = _U64.unpack_from(fingerprint)[0] % slots
        now_ms = round(now * 1000)
        self._file.acquire()
        try:
            index = self._find(fingerprint, home)
            if index >= 0:
                if words[_EXPIRY_WORD + 3 * index] > now_ms:
                    return False
            else:
                index = self._first_free(home, now_ms)
            offset = _HEADER_SIZE + index * _SLOT_SIZE
            # Fingerprint first: a process dying in between leaves an entry with an old, passed
            # expiry, which reads as free.
            mapped[offset : offset + _FINGERPRINT_SIZE] = fingerprint
            words[_EXPIRY_WORD + 3 * index] = round(expires_at * 1000)
            return True
        finally:
            self._file.release()

    def _find(self, fingerprint: bytes, home: int) -> int:
        """The slot in `home`'s window holding `fingerprint`, or -1. Searched in the mapping itself
        (no copy); a match counts only where a slot starts."""
        mapped, slots = self._map, self._slots
        end_slot = home + self._probe
        ranges = [(home, min(end_slot, slots))]
        if end_slot > slots:
            ranges.append((0, end_slot - slots))  # the window wraps around the end of the table
        for first, last in ranges:
            start, stop = _HEADER_SIZE + first * _SLOT_SIZE, _HEADER_SIZE + last * _SLOT_SIZE
            position = mapped.find(fingerprint, start, stop)
            while position >= 0 and (position - _HEADER_SIZE) % _SLOT_SIZE:
                position = mapped.find(fingerprint, position + 1, stop)
            if position >= 0:
                return (position - _HEADER_SIZE) // _SLOT_SIZE
        return -1

    def _first_free(self, home: int, now_ms: int) -> int:
        """The first slot of `home`'s window whose expiry has passed (0: never used); usually `home`.
        A window with no free slot means the table is too full: fail closed."""
        words, slots = self._words, self._slots
        for step in range(self._probe):
            index = (home + step) % slots
            if words[_EXPIRY_WORD + 3 * index] <= now_ms:
                return index
        raise errors.Unavailable(_FULL_MESSAGE)

    def _new_header(self) -> bytes:
        slots, probe = self._want
        return _HEADER.pack(_MAGIC, _VERSION, probe, slots, os.urandom(32))

    def _fit(self, header: bytes, file_size: int) -> Fit:
        if len(header) < _HEADER.size:
            return Fit.UNUSABLE
        magic, version, probe, slots, _key = _HEADER.unpack(header)
        if magic != _MAGIC or version != _VERSION or not 1 <= probe <= slots:
            return Fit.UNUSABLE
        if file_size < _HEADER_SIZE + slots * _SLOT_SIZE:
            return Fit.UNUSABLE
        return Fit.EXACT if (slots, probe) == self._want else Fit.USABLE
