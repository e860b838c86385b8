"""The authorization decision: deny by default, and every decision says why.

Today a principal may act on the resources of its own account and nothing else; identity and key
policies (issue 6) extend `evaluate` without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessRequest:
    principal_account: str
    principal_arn: str
    action: str
    resource_account: str | None  # None: an account-level action with no resource of its own
    resource_arn: str


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


def evaluate(request: AccessRequest) -> Decision:
    if request.resource_account is None or request.resource_account == request.principal_account:
        return Decision(True, "the resource belongs to the caller's account")
    return Decision(
        False,
        f"no statement allows {request.principal_arn} to call {request.action} "
        f"on {request.resource_arn} of another account",
    )
