"""Time as a dependency. Services and jobs take a Clock; tests pass a FrozenClock (`openkms.testing`)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """The current time in seconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


def iso_utc(moment: datetime) -> str:
    """Alibaba's date format: `YYYY-MM-DDTHH:MM:SSZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


DEV_CLOCK_FILE = "dev-clock"  # in the data dir's run/ folder; present only while the dev clock is on


class DevClock:
    """The development clock (`serve --dev-clock`): the wall clock plus an offset that only moves forward.

    The offset lives in a small file in the data dir's run/ folder so every worker of the node, the
    job runner and `openkms dev advance` share it; `now()` re-reads it when the file changed.
    `timestamp()` stays on the wall clock: signed requests carry the caller's real time, and their
    freshness window and replay cache must not jump with the offset.
    """

    dev = True

    def __init__(self, offset_file: Path) -> None:
        self._path = offset_file
        self._stamp: tuple[int, int] | None = None
        self._offset = 0.0

    def offset(self) -> float:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return 0.0
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._offset = max(0.0, float(self._path.read_text().strip() or "0"))
            except (OSError, ValueError):
                return self._offset
            self._stamp = stamp
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())

    def timestamp(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new total offset in seconds."""
        if seconds <= 0:
            raise ValueError("the development clock only moves forward")
        total = self.offset() + seconds
        advance_offset_file(self._path, total)
        return total


def advance_offset_file(path: Path, total: float) -> None:
    """Write a new total offset atomically (readers see the old or the new value, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{total:.3f}\n")
    os.replace(temporary, path)


def parse_duration(raw: str) -> float:
    """`30d`, `12h`, `15m`, `90s` (or a bare number of seconds) as seconds."""
    text = raw.strip()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if text and text[-1] in units:
        number, unit = text[:-1], units[text[-1]]
    else:
        number, unit = text, 1
    try:
        value = float(number) * unit
    except ValueError:
        raise ValueError(f"{raw!r} is not a duration like 30d, 12h, 15m or 90s") from None
    if not 0 < value <= 100 * 365 * 86400:
        raise ValueError(f"{raw!r} is not a positive duration of at most 100 years")
    return value
