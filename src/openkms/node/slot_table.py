"""Lookups shared by the node's fixed-slot hash tables (`nonces.py`, `rate_limits.py`).

A table is `slots` records of `slot_size` bytes from byte `base` of a mapping, each starting with a
fingerprint; a fingerprint lives only in the window of `probe` slots from its home slot (wrapping).
Owns the search only: never writes, never locks (the caller holds the file's lock).
"""

from __future__ import annotations

import mmap


def find_in_window(
    mapped: mmap.mmap, fingerprint: bytes, home: int, *, probe: int, slots: int, base: int, slot_size: int
) -> int:
    """The slot in `home`'s window whose record starts with `fingerprint`, or -1. Searched in the
    mapping itself (no copy); a match counts only where a slot starts."""
    end_slot = home + probe
    ranges = [(home, min(end_slot, slots))]
    if end_slot > slots:
        ranges.append((0, end_slot - slots))  # the window wraps around the end of the table
    for first, last in ranges:
        start, stop = base + first * slot_size, base + last * slot_size
        position = mapped.find(fingerprint, start, stop)
        while position >= 0 and (position - base) % slot_size:
            position = mapped.find(fingerprint, position + 1, stop)
        if position >= 0:
            return (position - base) // slot_size
    return -1
