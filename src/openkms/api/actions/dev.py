"""OpenKMS extension actions for testing users' own systems (not part of Alibaba's API).

`DevAdvanceClock` (Duration, e.g. `30d`) moves the development clock forward so rotation and
scheduled deletion happen without waiting. Refused unless the server runs with `--dev-clock`, and
only for the root of the server's operator account (the first one), through the policy engine (see
`service.dev_clock`): the clock is every tenant's. The job runner notices the new time at its next run.
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.api.actions.base import Action
from openkms.api.params import Params
from openkms.clock import DevClock, iso_utc, parse_duration
from openkms.errors import InvalidArgument, UnsupportedOperation
from openkms.service.container import Services
from openkms.service.context import RequestContext
from openkms.service.dev_clock import advance_dev_clock


def dev_advance_clock(params: Params, ctx: RequestContext, services: Services) -> Mapping[str, object]:
    clock = services.clock
    if not isinstance(clock, DevClock):
        raise UnsupportedOperation("The development clock is off: start the server with --dev-clock.")
    raw = params.required_str("Duration")
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise InvalidArgument(str(exc), parameter="Duration") from None
    offset = advance_dev_clock(ctx, services.db, clock, seconds)
    return {"Now": iso_utc(clock.now()), "OffsetSeconds": int(offset)}


ACTIONS = (Action("DevAdvanceClock", dev_advance_clock, frozenset({"Duration"})),)
