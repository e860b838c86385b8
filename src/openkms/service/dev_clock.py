"""The development clock use case (OpenKMS extension, `serve --dev-clock`): moving it forward.

The clock is the whole server's: moving it makes every tenant's rotation and deletion windows pass.
So it belongs to the server's operator, the first account (the one `bootstrap_store` made): the
policy engine decides `kms:DevAdvanceClock` on that account's dev-clock resource, which refuses
every other account, and only the operator account's root may then move it.
"""

from __future__ import annotations

from openkms.clock import Clock, DevClock
from openkms.errors import AccessDenied, UnsupportedOperation
from openkms.repository.database import Database
from openkms.service.authorization import decide
from openkms.service.context import RequestContext
from openkms.types import AccountId


def dev_clock_arn(operator: AccountId) -> str:
    """The resource the policy engine is asked about: the server's clock, owned by the operator."""
    return f"acs:kms::{operator}:dev-clock"


def operator_account(db: Database) -> AccountId | None:
    """The server's first account (the operator's), or None in an empty store."""
    with db.unit_of_work() as uow:
        accounts = uow.accounts.account_ids()
    return accounts[0] if accounts else None


def advance_dev_clock(ctx: RequestContext, db: Database, clock: Clock, seconds: float) -> float:
    """Move the development clock forward; the new offset in seconds. UnsupportedOperation when the
    clock is not a development clock; AccessDenied unless the caller is the operator account's root."""
    if not isinstance(clock, DevClock):
        raise UnsupportedOperation("The development clock is off: start the server with --dev-clock.")
    operator = operator_account(db)
    if operator is None:
        raise AccessDenied("The server has no operator account.")
    decide(ctx, "kms:DevAdvanceClock", dev_clock_arn(operator), operator, None)
    principal = ctx.principal
    if principal.name != "root" or not principal.is_user:
        raise AccessDenied("Only the root of the server's operator account may move the development clock.")
    return clock.advance(seconds)
