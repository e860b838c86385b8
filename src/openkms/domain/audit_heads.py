"""Sealed heads of audit files: the last durable record (seq, hash) of each file, kept out of the log's
reach (the database) so that `openkms audit verify` notices records cut off a file's end and a file
deleted whole. Owns the `Head` value and the `HeadStore` protocol; the database implements it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

__all__ = ["FileLink", "Head", "HeadStore"]


class Head(NamedTuple):
    file: str  # the audit file's name in the data dir's audit folder
    slot: str  # the writer: a worker's index, "cli", ...
    seq: int  # the last durable record's seq
    hash: str  # and its hash


class FileLink(NamedTuple):
    """The last known record of the previous file of the same slot, named by a new file's genesis."""

    file: str
    hash: str


class HeadStore(Protocol):
    def publish(self, head: Head) -> None:
        """Record `head` as its file's newest head (called from a background thread)."""
        ...

    def last_of_slot(self, slot: str) -> Head | None:
        """The most recently published head of `slot`'s files (a new file links to it)."""
        ...

    def heads(self) -> list[Head]:
        """Every file's newest head (this node's)."""
        ...
