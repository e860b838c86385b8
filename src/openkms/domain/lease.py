"""A held lease: which lease, who holds it, and its fence (grows with every new holder)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fence:
    name: str
    holder: str
    value: int
    milliseconds: int  # how long the lease lasts without renewal
