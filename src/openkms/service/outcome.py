"""What a use case hands back to the runner: its result and the resource it touched.

Owns `Outcome` and `acting_on`. The resource flows up with the result (success) or with the error
(failure, `OpenKMSError.resource`), never through the request context, so the runner can name it in
the audit record and count a key's usage whatever the front door.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from openkms.errors import OpenKMSError
from openkms.resource import Resource

__all__ = ["Outcome", "acting_on"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A use case's result and what it acted on (None: no single resource, e.g. a listing).

    `acted` is False only when a use case found nothing to do (a job's key no longer due): the
    runner then writes no record, since nothing changed and nobody asked."""

    value: T
    resource: Resource | None = None
    acted: bool = True


@contextmanager
def acting_on(resource: Resource) -> Iterator[None]:
    """Errors raised inside name `resource` (unless they already name a more precise one)."""
    try:
        yield
    except OpenKMSError as exc:
        exc.about(resource)
        raise
