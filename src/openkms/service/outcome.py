"""What a use case hands back to the runner: its result and the resource it touched.

Owns `Outcome` and `acting_on`. The resource flows up with the result (success) or with the error
(failure, `OpenKMSError.resource`), never through the request context, so the runner can name it in
the audit record and count a key's usage whatever the front door.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, NamedTuple, TypeVar

from openkms.errors import OpenKMSError
from openkms.resource import Resource

__all__ = ["Outcome", "acting_on"]

T_co = TypeVar("T_co", covariant=True)  # an Outcome[bool] is an Outcome[object]: it is immutable
U = TypeVar("U")


class Outcome(NamedTuple, Generic[T_co]):
    """A use case's result and what it acted on (None: no single resource, e.g. a listing).

    `acted` is False only when a use case found nothing to do (a job's key no longer due): the
    runner then writes no record, since nothing changed and nobody asked. Immutable; a NamedTuple
    rather than a frozen dataclass because every request builds one or two (a frozen dataclass's
    `__init__` sets each field through `object.__setattr__`)."""

    value: T_co
    resource: Resource | None = None
    acted: bool = True
    # A request that acted on several resources one by one (BatchGetSecretValue): each one's
    # resource and its failure (None: done), recorded after the request's own record.
    parts: tuple[tuple[Resource | None, OpenKMSError | None], ...] = ()

    def map(self, render: Callable[[T_co], U]) -> Outcome[U]:
        """The same outcome with its value rendered (an adapter turning a result into its answer)."""
        return Outcome(render(self.value), self.resource, self.acted, self.parts)


class acting_on:
    """Errors raised inside name `resource` (unless they already name a more precise one).

    A class rather than a generator context manager: every cryptographic call enters one, and this
    costs a fraction of a microsecond where `contextlib.contextmanager` costs several."""

    __slots__ = ("_resource",)

    def __init__(self, resource: Resource) -> None:
        self._resource = resource

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if isinstance(error, OpenKMSError):
            error.about(self._resource)
