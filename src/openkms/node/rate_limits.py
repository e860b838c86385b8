"""Per-tenant request-rate limits on one node: token buckets shared by every worker process.

Owns the buckets and the decision; the RPC adapter says which account, access key and action class a
request belongs to (`api/dispatch.py`). Each (account, class) and (access key, class) has a bucket
holding `burst` requests that refills at `per_second`; a request takes one token from both of its
buckets or from neither (`errors.Throttled`). Never stores an account or access key id, only keyed
fingerprints. Limits are per node: several nodes each grant the full rate.

A bucket is kept as one number, its theoretical arrival time (GCRA): the instant at which it would
be full again. A request at `now` is admitted if `max(tat, now) + interval - now <= burst x
interval`, and then `tat` moves on by one interval. A slot whose `tat` has passed holds a full
bucket, that is nothing: it is free for any key, so the table needs no clean-up.
"""

from __future__ import annotations

import enum
import hashlib
import math
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from openkms import errors
from openkms.node.shared_file import Fit, SharedFile
from openkms.node.slot_table import find_in_window

__all__ = ["RATE_FILE", "Limits", "Rate", "RateClass", "SharedRateLimiter", "next_arrival"]

RATE_FILE = "rate-limits.shm"
_FULL_MESSAGE = "rate-limit table is full"
_THROTTLED_MESSAGE = "Request was denied due to request throttling: the {scope} is over its {kind} rate."


class RateClass(enum.IntEnum):
    """The action classes that have separate limits."""

    CRYPTO = 0  # Encrypt, Decrypt, GenerateDataKey*, ReEncrypt, Asymmetric*, *ExportDataKey
    MANAGEMENT = 1  # every other KMS action
    RAM = 2  # the RAM and STS products


_KIND = {RateClass.CRYPTO: "cryptographic", RateClass.MANAGEMENT: "management", RateClass.RAM: "RAM/STS"}


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` requests a second with a burst of `burst` requests; `per_second` 0 means no limit."""

    per_second: float
    burst: float

    @property
    def interval_ns(self) -> int:
        return max(1, round(1e9 / self.per_second))

    @property
    def capacity_ns(self) -> int:
        return self.interval_ns * max(1, math.floor(self.burst))


@dataclass(frozen=True, slots=True)
class Limits:
    """The rates of each class, per account and per access key (indexed by `RateClass`)."""

    per_account: tuple[Rate, Rate, Rate]
    per_access_key: tuple[Rate, Rate, Rate]


def next_arrival(tat_ns: int, now_ns: int, interval_ns: int, capacity_ns: int) -> int | None:
    """GCRA: the bucket's new theoretical arrival time if a request at `now_ns` is admitted, None if
    the bucket is empty. `tat_ns` 0 (or any passed time) is a full bucket."""
    arrival = (tat_ns if tat_ns > now_ns else now_ns) + interval_ns
    return arrival if arrival - now_ns <= capacity_ns else None


# File layout, little-endian, as `nonces.py`: a one-page header, then 24-byte slots.
#   0 magic "OKMSRATE"  8 version u32  12 probe u32  16 slot count u64  24 key 32 B
#   4096 + 24 * i: slot i = fingerprint 16 B, theoretical arrival time in epoch nanoseconds u64
_MAGIC = b"OKMSRATE"
_VERSION = 1
_HEADER = struct.Struct("<8sIIQ32s")
_HEADER_SIZE = 4096
_SLOT_SIZE = 24
_FINGERPRINT_SIZE = 16
_TAT_WORD = (_HEADER_SIZE + _FINGERPRINT_SIZE) // 8
_U64 = struct.Struct("<Q")
assert sys.byteorder == "little", "the u64 view assumes little-endian"


class SharedRateLimiter:
    """The node's buckets in a memory-mapped file (`shared_file.SharedFile`), one flock per check.

    Open addressing over a window of `max_probe` slots, as the replay cache. A key's slot is free
    once its bucket is full again (at most `burst / per_second` seconds after its last request), so
    the live entries are the keys that were busy in the last burst period: 65,536 slots hold far
    more than one node can serve. A full window fails closed (`errors.Unavailable`).
    """

    def __init__(
        self,
        path: Path,
        limits: Limits,
        *,
        slots: int = 1 << 16,
        max_probe: int = 32,
        lock: SharedFile | None = None,
    ) -> None:
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
        self._words = memoryview(self._map).cast("Q")
        # The flock that serialises the table: its own file's, or one the caller already takes on
        # every request (the replay cache's), so that a request pays for one flock, not two.
        self._lock = self._file if lock is None else lock
        # Per class: (interval, capacity) per account and per access key; None when unlimited.
        self._rates = [
            _without_redundant(
                _params(limits.per_account[rate_class]), _params(limits.per_access_key[rate_class])
            )
            for rate_class in RateClass
        ]
        self._fingerprints: dict[tuple[str, str, int], bytes] = {}
        self._last_slot: dict[bytes, int] = {}  # fingerprint -> the slot it was last found in

    @property
    def lock(self) -> SharedFile:
        """The flock that serialises the table (`admit` takes it; `admit_held` needs it held)."""
        return self._lock

    def close(self) -> None:
        self._words.release()
        self._file.close()

    def __enter__(self) -> SharedRateLimiter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def admit(self, account_id: str, access_key_id: str, rate_class: RateClass, now: float) -> None:
        """Take one token from the account's and the access key's bucket of `rate_class`, or raise
        `errors.Throttled` and take none."""
        self._lock.acquire()
        try:
            self.admit_held(account_id, access_key_id, rate_class, now)
        finally:
            self._lock.release()

    def admit_held(self, account_id: str, access_key_id: str, rate_class: RateClass, now: float) -> None:
        """`admit`, for a caller that holds the limiter's lock (the replay cache's `remember`)."""
        account_rate, key_rate = self._rates[rate_class]
        if account_rate is None and key_rate is None:
            return
        now_ns = round(now * 1e9)
        account = None if account_rate is None else self._fingerprint("a", account_id, rate_class)
        key = None if key_rate is None else self._fingerprint("k", access_key_id, rate_class)
        account_slot = key_slot = (-1, 0)
        if account is not None and account_rate is not None:
            account_slot = self._decide(account, now_ns, account_rate, "account", rate_class)
        if key is not None and key_rate is not None:
            key_slot = self._decide(key, now_ns, key_rate, "access key", rate_class)
        # Both buckets have a token: take them. A slot the first claims may be the second's,
        # if that one held a full bucket; the second then claims another.
        taken = -1
        if account is not None:
            taken = self._store(account, *account_slot, now_ns)
        if key is not None:
            index, tat = key_slot
            self._store(key, -1 if index == taken else index, tat, now_ns)

    def _decide(
        self, fingerprint: bytes, now_ns: int, rate: tuple[int, int], scope: str, rate_class: RateClass
    ) -> tuple[int, int]:
        """The key's slot (-1: none) and its new arrival time; `errors.Throttled` if it is empty."""
        index = self._find(fingerprint)
        tat = 0 if index < 0 else int(self._words[_TAT_WORD + 3 * index])
        arrival = next_arrival(tat, now_ns, *rate)
        if arrival is None:
            raise errors.Throttled(_THROTTLED_MESSAGE.format(scope=scope, kind=_KIND[rate_class]))
        return index, arrival

    def _store(self, fingerprint: bytes, index: int, tat: int, now_ns: int) -> int:
        if index < 0:
            index = self._first_free(fingerprint, now_ns)
            offset = _HEADER_SIZE + index * _SLOT_SIZE
            self._map[offset : offset + _FINGERPRINT_SIZE] = fingerprint
            self._remember_slot(fingerprint, index)
        self._words[_TAT_WORD + 3 * index] = tat
        return index

    def _home(self, fingerprint: bytes) -> int:
        return int(_U64.unpack_from(fingerprint)[0]) % self._slots

    def _find(self, fingerprint: bytes) -> int:
        # Most calls find a key where it was last seen: one 16-byte compare instead of a window scan.
        hint = self._last_slot.get(fingerprint, -1)
        if hint >= 0:
            offset = _HEADER_SIZE + hint * _SLOT_SIZE
            if self._map[offset : offset + _FINGERPRINT_SIZE] == fingerprint:
                return hint
        index = find_in_window(
            self._map,
            fingerprint,
            self._home(fingerprint),
            probe=self._probe,
            slots=self._slots,
            base=_HEADER_SIZE,
            slot_size=_SLOT_SIZE,
        )
        if index >= 0:
            self._remember_slot(fingerprint, index)
        return index

    def _remember_slot(self, fingerprint: bytes, index: int) -> None:
        if len(self._last_slot) >= 65_536:
            self._last_slot.clear()  # a cache: bounded, refilled on demand
        self._last_slot[fingerprint] = index

    def _first_free(self, fingerprint: bytes, now_ns: int) -> int:
        words, slots, home = self._words, self._slots, self._home(fingerprint)
        for step in range(self._probe):
            index = (home + step) % slots
            if words[_TAT_WORD + 3 * index] <= now_ns:
                return index
        raise errors.Unavailable(_FULL_MESSAGE)

    def _fingerprint(self, scope: str, identifier: str, rate_class: RateClass) -> bytes:
        cache_key = (scope, identifier, rate_class)
        fingerprint = self._fingerprints.get(cache_key)
        if fingerprint is None:
            hasher = self._hasher.copy()
            hasher.update(f"{scope}\0{int(rate_class)}\0{identifier}".encode("utf-8", "surrogatepass"))
            fingerprint = hasher.digest()
            if len(self._fingerprints) >= 65_536:
                self._fingerprints.clear()  # a cache: bounded, refilled on demand
            self._fingerprints[cache_key] = fingerprint
        return fingerprint

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


def _without_redundant(
    account: tuple[int, int] | None, key: tuple[int, int] | None
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The (account, access key) bucket parameters, the access key's dropped when it can never refuse
    what the account's admits: an access key's requests are some of its account's, and a sequence
    that conforms to GCRA(interval T, tolerance T x (burst - 1)) conforms to any with a shorter or
    equal interval and a larger or equal tolerance (the default: both the same), so its bucket
    would only cost a second lookup per request."""
    if account is None or key is None:
        return account, key
    (account_interval, account_capacity), (key_interval, key_capacity) = account, key
    account_tolerance, key_tolerance = account_capacity - account_interval, key_capacity - key_interval
    if key_interval <= account_interval and key_tolerance >= account_tolerance:
        return account, None
    return account, key


def _params(rate: Rate) -> tuple[int, int] | None:
    return None if rate.per_second <= 0 else (rate.interval_ns, rate.capacity_ns)
