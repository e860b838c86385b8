"""The admin CLI's door to the runner: each command that changes state is one request of the operator
(the OS user running it) through `service/runner.py`, so it is refused while sealed and audited like
an API call, in the audit folder of the data dir."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from typing import TypeVar

from openkms.server.runtime import Runtime
from openkms.service.context import Door, RequestContext, operator_principal
from openkms.service.ids import new_request_id
from openkms.service.outcome import Outcome
from openkms.types import AccountId, RegionId

T = TypeVar("T")


def operator_context(runtime: Runtime, account_id: AccountId, region: str) -> RequestContext:
    return RequestContext(
        new_request_id(),
        operator_principal(account_id, _os_user()),
        RegionId(region),
        door=Door.CLI,
        received_at=runtime.clock.timestamp(),
    )


def run_admin(runtime: Runtime, ctx: RequestContext, action: str, use_case: Callable[[], Outcome[T]]) -> T:
    """Run one operator request through the runner; its value, or its (recorded) error."""
    return asyncio.run(runtime.runner.run(ctx, action, use_case))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): name the uid
        import os

        return f"uid-{os.getuid()}"
