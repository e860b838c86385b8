"""Who is calling, from where, for which request; and what the audit record should name."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.policy.document import PolicyDocument
from openkms.types import AccountId, RegionId


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an account's root, a RAM user, or an STS session of a RAM role."""

    account_id: AccountId
    name: str  # "root" | "user/<name>" | "assumed-role/<role>/<session>"
    policies: tuple[PolicyDocument, ...] = ()  # identity policies attached to the user or role

    @property
    def arn(self) -> str:
        return f"acs:ram::{self.account_id}:{self.name}"

    @property
    def policy_arn(self) -> str:
        """The ARN policies name: a session answers to its role's ARN."""
        if self.name.startswith("assumed-role/"):
            return f"acs:ram::{self.account_id}:role/{self.name.split('/')[1]}"
        return self.arn

    @property
    def kind(self) -> str:
        """Alibaba's AuthPrincipalType: Account, SubUser or AssumedRoleUser."""
        if self.name == "root":
            return "Account"
        return "AssumedRoleUser" if self.name.startswith("assumed-role/") else "SubUser"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    principal: Principal
    region_id: RegionId
    source_ip: str | None = None
    received_at: float = 0.0  # epoch seconds, for policy conditions on the current time
    secure_transport: bool = False
    # Filled in by the service so the audit record names what was touched.
    key_id: str | None = None
    key_version_id: str | None = None

    def touched(self, key_id: str, key_version_id: str | None = None) -> None:
        self.key_id = key_id
        if key_version_id is not None:
            self.key_version_id = key_version_id
