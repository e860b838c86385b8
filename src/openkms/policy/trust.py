"""Who may assume a RAM role: its trust policy (AssumeRolePolicyDocument) against the caller.

A trust statement naming `acs:ram::<uid>:root` (or `acs:ram::<uid>:*`) trusts the whole account: any
of its identities that its own identity policies allow to call sts:AssumeRole. Naming a user or role
trusts that identity alone. A matching Deny wins.
"""

from __future__ import annotations

from openkms.policy.conditions import RequestFacts
from openkms.policy.document import PolicyDocument
from openkms.policy.patterns import action_matches, matches

ASSUME_ROLE = "sts:AssumeRole"


def trusted(
    document: PolicyDocument, account_id: str, principal_arn: str, facts: RequestFacts
) -> tuple[bool, str]:
    """(trusted, reason) for a caller of `account_id` whose policy ARN is `principal_arn`."""
    allowed_by: str | None = None
    for number, statement in enumerate(document.statements, 1):
        if not any(action_matches(a, ASSUME_ROLE) for a in statement.actions):
            continue
        if not any(_names(p, account_id, principal_arn) for p in statement.principals):
            continue
        if not all(condition.holds(facts) for condition in statement.conditions):
            continue
        name = repr(statement.sid) if statement.sid else f"#{number}"
        if not statement.allows:
            return False, f"the role's trust policy denies it (statement {name})"
        allowed_by = allowed_by or name
    if allowed_by is None:
        return False, "the role's trust policy does not name the caller or its account"
    return True, f"trusted by statement {allowed_by}"


def _names(principal: str, account_id: str, principal_arn: str) -> bool:
    if principal.startswith("service:"):
        return False  # services assume roles through their own integration, not through this API
    if principal in (f"acs:ram::{account_id}:root", f"acs:ram::{account_id}:*", "*"):
        return True
    return matches(principal, principal_arn)
