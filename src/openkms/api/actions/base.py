"""What an action is: a name, a handler, and whether it may block on the database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from openkms.api.params import Params
from openkms.errors import InvalidArgument
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome

# A handler answers the action's response fields, with the resource it acted on (an Outcome).
Handler = Callable[[Params, RequestContext, Services], "Outcome[Mapping[str, object]] | Mapping[str, object]"]


# Parameters every RPC request may carry besides its action's own (signing, format, region).
COMMON_PARAMETERS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Signature",
        "Timestamp",
        "RegionId",
        "SecurityToken",
    }
)


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    handler: Handler
    parameters: frozenset[str] = frozenset()
    # Blocking handlers run in a worker thread. Hot-path crypto runs on the event loop: its steady
    # state touches only the caches.
    blocking: bool = True
    _accepted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_accepted", self.parameters | COMMON_PARAMETERS)

    def check_parameters(self, given: Iterable[str]) -> None:
        """Refuse a parameter this action does not take, before anything runs. A declared `Name.N`
        admits the repeat-list forms `Name.1`, `Name.2.Key`, ..."""
        if self._accepted.issuperset(given):
            return  # the usual case, decided by one C-level set operation
        for name in given:
            if name not in self.parameters and name not in COMMON_PARAMETERS:
                if "." in name and name.split(".", 1)[0] + ".N" in self.parameters:
                    continue
                raise InvalidArgument(f"{self.name} takes no parameter {name}.", parameter=name)


def empty(done: Outcome[object]) -> Outcome[Mapping[str, object]]:
    """The answer of an action whose response carries no fields of its own."""
    return done.map(lambda _: {})


def page_params(params: Params) -> tuple[int, int]:
    page_number = params.optional_int("PageNumber", 1, minimum=1, maximum=1_000_000)
    page_size = params.optional_int("PageSize", 10, minimum=1, maximum=100)
    return page_number, page_size
