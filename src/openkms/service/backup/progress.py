"""What a backup or restore reports while it runs, for a front door to show (the CLI: Rich)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def step(self, name: str, total: int | None) -> None:
        """A table or file starts; `total` rows (or bytes) when known."""
        ...

    def advance(self, count: int) -> None:
        """`count` more rows (or bytes) of the current step are done."""
        ...


class Quiet:
    """Reports nothing."""

    def step(self, name: str, total: int | None) -> None:
        return None

    def advance(self, count: int) -> None:
        return None
