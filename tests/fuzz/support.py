"""What every fuzz test checks, and the budget it runs in.

A refusal is acceptable only as an `OpenKMSError` whose wire form (`api/wire_errors.to_wire`) is a
client error with a code listed in docs/errors.md. Pure parsers run under `no_hang`, a generous
watchdog that turns a hang (catastrophic backtracking, an endless loop) into a failure instead of a
stalled CI job; it bounds nothing that works, so it is no timing assertion.

`fuzz_settings(n)` is the budget: `n` examples, no Hypothesis deadline (machines are noisy). Set
OPENKMS_FUZZ_SCALE (default 1) to multiply every budget for a longer local run.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import FrameType
from typing import TypeVar

from hypothesis import HealthCheck, settings

from openkms.api.wire_errors import to_wire
from openkms.errors import OpenKMSError

T = TypeVar("T")

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
HANG_SECONDS = 10.0  # per call of a pure parser on bounded input; the real cost is microseconds
_SCALE = float(os.environ.get("OPENKMS_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * _SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@cache
def documented_codes() -> tuple[frozenset[str], frozenset[str]]:
    """(exact codes, code families) from the table of docs/errors.md.

    A family is a code listed with its variants (`EntityNotExist` (`EntityNotExist.User`, ...)):
    every `Family.<entity>` is documented. `Missing<Parameter>` makes every `Missing<Name>` one.
    """
    exact: set[str] = set()
    families: set[str] = set()
    for line in ERRORS_DOC.read_text().splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not cells[1].strip().isdigit():
            continue
        names = re.findall(r"`([^`]+)`", cells[2])
        exact.update(names)
        if len(names) > 1 and names[1].startswith(names[0] + "."):
            families.add(names[0])
    return frozenset(exact), frozenset(families)


def is_documented(code: str) -> bool:
    exact, families = documented_codes()
    if code in exact:
        return True
    if "Missing<Parameter>" in exact and re.fullmatch(r"Missing[A-Za-z0-9.]+", code):
        return True
    return code.split(".", 1)[0] in families and "." in code


def assert_documented_refusal(error: BaseException) -> None:
    """`error` must be a client error the wire table maps to a documented code."""
    assert isinstance(error, OpenKMSError), f"an unhandled {type(error).__name__}: {error!r}"
    wire = to_wire(error)
    assert wire.status < 500, f"{type(error).__name__} answers {wire.status} {wire.code}"
    assert is_documented(wire.code), f"{wire.code} is not in docs/errors.md"


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so no `except Exception` in the code under test eats it."""


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused_or_value(call: Callable[[], T]) -> T | OpenKMSError:
    """Run a pure parser under the watchdog: its value, or its refusal once checked as documented."""
    with no_hang():
        try:
            return call()
        except OpenKMSError as error:
            assert_documented_refusal(error)
            return error
