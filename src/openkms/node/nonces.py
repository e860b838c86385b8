"""Replay protection: which (access key, SignatureNonce) pairs this node has already accepted.

Owns the nonce tables: `MemoryNonceStore` for one process, `SharedNonceStore` for every worker process
of one node (one memory-mapped file). Fails closed: when an entry cannot be stored the request is
refused with `errors.Unavailable`, never accepted unchecked. Stores keyed fingerprints only, never
the nonces or access key ids themselves.

An entry is live while `now < expires_at`. The caller picks `expires_at` so that a replay after it is
refused anyway by the timestamp window. Times are compared in whole milliseconds. A clock that steps
backwards may let an already expired entry be overwritten sooner; the timestamp check still applies.

Each account has a bounded share of the table: given `account`, a store refuses a fresh nonce with
`errors.Throttled` once that account holds `account_share` live entries, so one account spending
nonces as fast as it can never fills the table for the others. `admit`, if given, runs inside the
same critical section after the replay and share checks and before the nonce is stored: a replay
costs the caller's rate limit nothing, and a refusal by `admit` leaves the nonce unspent.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from openkms import errors
from openkms.node.shared_file import Fit, SharedFile
from openkms.node.slot_table import find_in_window

_FULL_MESSAGE = "replay cache is full"
_SHARE_MESSAGE = "Request was denied: the account holds its whole share of the replay cache; retry later."


class NonceStore(Protocol):
    def remember(
        self,
        access_key_id: str,
        nonce: str,
        expires_at: float,
        now: float,
        *,
        account: str | None = None,
        admit: Callable[[], None] | None = None,
    ) -> bool:
        """True if (access key, nonce) was not live and is now remembered until `expires_at`;
        False if it is a replay. Raises `errors.Unavailable` if it cannot be remembered, and
        `errors.Throttled` (or what `admit` raises) if `account` is over its share; then nothing
        is stored."""
        ...


class SharedReplay(Protocol):
    """The replay cache every node of one store shares (`repository/replay_ledger.py`): asked after
    the node's own cache accepted a nonce, so a replay to the same node never reaches it."""

    async def spend(self, access_key_id: str, nonce: str, expires_at: float) -> bool:
        """True if no node had spent (access key, nonce); raises `errors.Unavailable` if it cannot
        tell (fail closed)."""
        ...


class MemoryNonceStore:
    """One process only (tests, a single worker). Bounded; expired entries are purged as time passes."""

    def __init__(self, *, max_entries: int = 1_000_000, account_share: int | None = None) -> None:
        self._max_entries = max_entries
        self._share = max_entries if account_share is None else account_share
        self._expiry: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._by_expiry: list[tuple[float, tuple[str, str]]] = []
        self._live: dict[str, int] = {}  # account -> live entries it spent
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def remember(
        self,
        access_key_id: str,
        nonce: str,
        expires_at: float,
        now: float,
        *,
        account: str | None = None,
        admit: Callable[[], None] | None = None,
    ) -> bool:
        entry = (access_key_id, nonce)
        with self._lock:
            self._purge(now)
            known = self._expiry.get(entry)
            if known is not None and now < known[0]:
                return False
            if known is None and len(self._expiry) >= self._max_entries:
                raise errors.Unavailable(_FULL_MESSAGE)
            if account is not None and self._live.get(account, 0) >= self._share:
                raise errors.Throttled(_SHARE_MESSAGE)
            if admit is not None:
                admit()
            if known is not None:
                self._forget(known[1])  # an expired entry not purged yet is replaced
            self._expiry[entry] = (expires_at, account)
            if account is not None:
                self._live[account] = self._live.get(account, 0) + 1
            heapq.heappush(self._by_expiry, (expires_at, entry))
            return True

    def _purge(self, now: float) -> None:
        heap = self._by_expiry
        while heap and heap[0][0] <= now:
            expires_at, entry = heapq.heappop(heap)
            known = self._expiry.get(entry)
            if known is not None and known[0] == expires_at:
                del self._expiry[entry]
                self._forget(known[1])

    def _forget(self, account: str | None) -> None:
        if account is not None:
            left = self._live[account] - 1
            if left:
                self._live[account] = left
            else:
                del self._live[account]


# File layout, little-endian. The header fills the first page so the table starts page aligned.
#   0  magic "OKMSNONC"   8  format version u32   12  probe bound u32   16  slot count u64   24  key 32 B
#   56 account slot count u32
#   4096 + 24 * i: slot i = fingerprint 16 B, expiry in epoch milliseconds u64 (0: never used)
#   then account slot j (680 B): fingerprint 16 B, swept u64, last u64, total u64, 80 bucket words
#   (see `SharedNonceStore`)
_MAGIC = b"OKMSNONC"
_VERSION = 2
_HEADER = struct.Struct("<8sIIQ32sI")
_HEADER_SIZE = 4096
_SLOT_SIZE = 24
_FINGERPRINT_SIZE = 16
_U64 = struct.Struct("<Q")
_EXPIRY_WORD = (_HEADER_SIZE + _FINGERPRINT_SIZE) // 8
assert _SLOT_SIZE == 3 * 8 and sys.byteorder == "little", "the u64 view assumes 24-byte slots, little-endian"

# Per-account counts of live entries, by expiry bucket. A bucket word is (bucket number << 32) | count;
# bucket b holds entries expiring in [b, b + 1) x 64 s and counts as live until its end, so a count
# errs high by at most one bucket. 80 buckets cover the longest entry lifetime the settings allow
# (timestamp window 3,600 s + future skew 900 s) with room to spare.
_BUCKET_MS = 64_000
_BUCKETS = 80
_ACCOUNT_WORDS = 5 + _BUCKETS  # fingerprint (2), swept, last, total, buckets
_ACCOUNT_SIZE = 8 * _ACCOUNT_WORDS
_ACCOUNT_PROBE = 32
_SWEPT, _LAST, _TOTAL, _RING = 2, 3, 4, 5  # word offsets inside an account slot
_COUNT_MASK = 0xFFFFFFFF


def account_slots_for(slots: int) -> int:
    """How many accounts a table of `slots` nonce slots follows at once (one per 1,024, at least 256)."""
    return max(256, slots // 1024)


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

    A second, smaller table after the first counts each account's live entries in 64-second expiry
    buckets (same probing; an account slot is free once its last bucket has passed). An account at
    `account_share` live entries is refused with `errors.Throttled`; `account_share` is a setting of
    the opener, not of the file. More accounts with live entries than the account table's window
    can hold fails closed like a full table.
    """

    def __init__(
        self,
        path: Path,
        *,
        slots: int = 1 << 22,
        max_probe: int = 64,
        account_share: int | None = None,
    ) -> None:
        if slots < 1 or max_probe < 1:
            raise ValueError("slots and max_probe must be positive")
        accounts = account_slots_for(slots)
        self._want = (slots, min(max_probe, slots), accounts)
        self._file = SharedFile(
            path,
            size=_HEADER_SIZE + slots * _SLOT_SIZE + accounts * _ACCOUNT_SIZE,
            header_size=_HEADER.size,
            new_header=self._new_header,
            fit=self._fit,
        )
        _magic, _version, probe, file_slots, key, file_accounts = _HEADER.unpack_from(self._file.map, 0)
        self._slots: int = file_slots
        self._probe: int = probe
        self._accounts: int = file_accounts
        self._account_base: int = _HEADER_SIZE + file_slots * _SLOT_SIZE
        self._share = account_share if account_share is not None else file_slots
        self._hasher = hashlib.blake2b(digest_size=_FINGERPRINT_SIZE, key=key)
        self._account_hasher = hashlib.blake2b(digest_size=_FINGERPRINT_SIZE, key=key, person=b"account")
        self._account_slot: dict[str, tuple[bytes, int]] = {}  # account -> (fingerprint, slot last seen)
        self._map = self._file.map
        # The table as little-endian u64 words: slot i's expiry is word _EXPIRY_WORD + 3 * i.
        self._words = memoryview(self._map).cast("Q")

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def max_probe(self) -> int:
        return self._probe

    @property
    def lock(self) -> SharedFile:
        """The flock `remember` holds while it runs `admit`: give it to the rate limiter
        (`rate_limits.SharedRateLimiter(lock=...)`) so that one flock covers both tables."""
        return self._file

    def close(self) -> None:
        self._words.release()  # the mapping cannot be closed while a view of it exists
        self._file.close()

    def __enter__(self) -> SharedNonceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def remember(
        self,
        access_key_id: str,
        nonce: str,
        expires_at: float,
        now: float,
        *,
        account: str | None = None,
        admit: Callable[[], None] | None = None,
    ) -> bool:
        hasher = self._hasher.copy()  # cheaper than keying a new blake2b each call
        hasher.update(f"{access_key_id}\0{nonce}".encode("utf-8", "surrogatepass"))
        fingerprint = hasher.digest()
        mapped, words = self._map, self._words
        home = _U64.unpack_from(fingerprint)[0] % self._slots
        now_ms, expires_ms = round(now * 1000), round(expires_at * 1000)
        self._file.acquire()
        try:
            index = self._find(fingerprint, home)
            if index >= 0:
                if words[_EXPIRY_WORD + 3 * index] > now_ms:
                    return False
            else:
                index = self._first_free(home, now_ms)
            counted = -1 if account is None else self._account_word(account, now_ms // _BUCKET_MS)
            if counted >= 0 and words[counted + _TOTAL] >= self._share:
                raise errors.Throttled(_SHARE_MESSAGE)
            if admit is not None:
                admit()
            offset = _HEADER_SIZE + index * _SLOT_SIZE
            # Fingerprint first: a process dying in between leaves an entry with an old, passed
            # expiry, which reads as free.
            mapped[offset : offset + _FINGERPRINT_SIZE] = fingerprint
            words[_EXPIRY_WORD + 3 * index] = expires_ms
            if counted >= 0:
                self._count(counted, now_ms // _BUCKET_MS, expires_ms // _BUCKET_MS)
            return True
        finally:
            self._file.release()

    def live_of(self, account: str, now: float) -> int:
        """How many live entries `account` holds (an upper bound, see the class docstring)."""
        self._file.acquire()
        try:
            return int(self._words[self._account_word(account, round(now * 1000) // _BUCKET_MS) + _TOTAL])
        finally:
            self._file.release()

    def live_entries(self, now: float) -> int:
        """How many entries are live, counted from the accounts' expiry buckets (for the metrics; an
        upper bound like `live_of`). Reads without the lock: a count may be a moment old."""
        bucket = round(now * 1000) // _BUCKET_MS
        words, first = self._words, self._account_base // 8
        total = 0
        for word in range(first, first + self._accounts * _ACCOUNT_WORDS, _ACCOUNT_WORDS):
            if words[word + _LAST] < bucket:
                continue  # a free slot, or an account whose entries have all expired
            for ring in range(word + _RING, word + _RING + _BUCKETS):
                value = words[ring]
                if value >> 32 >= bucket:
                    total += value & _COUNT_MASK
        return total

    def _find(self, fingerprint: bytes, home: int) -> int:
        return find_in_window(
            self._map,
            fingerprint,
            home,
            probe=self._probe,
            slots=self._slots,
            base=_HEADER_SIZE,
            slot_size=_SLOT_SIZE,
        )

    def _first_free(self, home: int, now_ms: int) -> int:
        """The first slot of `home`'s window whose expiry has passed (0: never used); usually `home`.
        A window with no free slot means the table is too full: fail closed."""
        words, slots = self._words, self._slots
        for step in range(self._probe):
            index = (home + step) % slots
            if words[_EXPIRY_WORD + 3 * index] <= now_ms:
                return index
        raise errors.Unavailable(_FULL_MESSAGE)

    def _account_word(self, account: str, bucket: int) -> int:
        """The first word of `account`'s slot, claimed if it has none, its expired buckets swept."""
        words, mapped = self._words, self._map
        known = self._account_slot.get(account)
        if known is None:
            hasher = self._account_hasher.copy()
            hasher.update(account.encode("utf-8", "surrogatepass"))
            fingerprint = hasher.digest()
            if len(self._account_slot) >= 65_536:
                self._account_slot.clear()  # a cache: bounded, refilled on demand
        else:
            fingerprint = known[0]
        base = self._account_base
        offset = base + (0 if known is None else known[1]) * _ACCOUNT_SIZE
        if known is not None and mapped[offset : offset + _FINGERPRINT_SIZE] == fingerprint:
            index = known[1]
        else:
            home = _U64.unpack_from(fingerprint)[0] % self._accounts
            probe = min(_ACCOUNT_PROBE, self._accounts)
            index = find_in_window(
                mapped,
                fingerprint,
                home,
                probe=probe,
                slots=self._accounts,
                base=base,
                slot_size=_ACCOUNT_SIZE,
            )
            if index < 0:
                index = self._claim_account(fingerprint, home, probe, bucket)
            self._account_slot[account] = (fingerprint, index)
        word = (base + index * _ACCOUNT_SIZE) // 8
        if words[word + _SWEPT] < bucket:
            for ring in range(word + _RING, word + _RING + _BUCKETS):
                value = words[ring]
                if value and value >> 32 < bucket:
                    words[word + _TOTAL] -= value & _COUNT_MASK
                    words[ring] = 0
            words[word + _SWEPT] = bucket
        return word

    def _claim_account(self, fingerprint: bytes, home: int, probe: int, bucket: int) -> int:
        """A free account slot of `home`'s window (every bucket it counted has passed), reset."""
        words, base = self._words, self._account_base
        for step in range(probe):
            index = (home + step) % self._accounts
            offset = base + index * _ACCOUNT_SIZE
            if words[offset // 8 + _LAST] < bucket:
                self._map[offset : offset + _ACCOUNT_SIZE] = fingerprint + bytes(
                    _ACCOUNT_SIZE - _FINGERPRINT_SIZE
                )
                words[offset // 8 + _SWEPT] = bucket
                return index
        raise errors.Unavailable(_FULL_MESSAGE)

    def _count(self, word: int, bucket: int, expiry_bucket: int) -> None:
        words = self._words
        # The caller bounds lifetimes; clamping keeps a bucket inside the ring whatever it passes.
        expiry_bucket = min(max(expiry_bucket, bucket), bucket + _BUCKETS - 1)
        ring = word + _RING + expiry_bucket % _BUCKETS
        value = words[ring]
        if value >> 32 != expiry_bucket:  # after the sweep a slot holds this bucket or nothing
            value = expiry_bucket << 32
        words[ring] = value + 1
        words[word + _TOTAL] += 1
        words[word + _LAST] = max(words[word + _LAST], expiry_bucket)

    def _new_header(self) -> bytes:
        slots, probe, accounts = self._want
        return _HEADER.pack(_MAGIC, _VERSION, probe, slots, os.urandom(32), accounts)

    def _fit(self, header: bytes, file_size: int) -> Fit:
        if len(header) < _HEADER.size:
            return Fit.UNUSABLE
        magic, version, probe, slots, _key, accounts = _HEADER.unpack(header)
        if magic != _MAGIC or version != _VERSION or not 1 <= probe <= slots or accounts < 1:
            return Fit.UNUSABLE
        if file_size < _HEADER_SIZE + slots * _SLOT_SIZE + accounts * _ACCOUNT_SIZE:
            return Fit.UNUSABLE
        return Fit.EXACT if (slots, probe, accounts) == self._want else Fit.USABLE
