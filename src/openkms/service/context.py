"""Who is calling, from where, for which request; and what the audit record should name."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.types import AccountId, RegionId


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: AccountId
    name: str  # "root" for an account's own access key; RAM users and roles come with issue 6
    # Who acts (named `actor`, not `kind`: issue 6 gives Principal a `kind` property of its own):
    # "user" for callers with an access key; "service" for an integrated cloud service (it may manage
    # service keys, alias/acs/<service>); "system" for the server's own jobs.
    actor: str = "user"

    @property
    def is_user(self) -> bool:
        return self.actor == "user"

    @property
    def arn(self) -> str:
        if self.name == "root":
            return f"acs:ram::{self.account_id}:root"
        if self.actor == "system":
            return f"acs:kms::{self.account_id}:system/{self.name}"
        if self.actor == "service":
            return f"acs:ram::{self.account_id}:service/{self.name}"
        return f"acs:ram::{self.account_id}:{self.name}"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    principal: Principal
    region_id: RegionId
    source_ip: str | None = None
    # Filled in by the service so the audit record names what was touched.
    key_id: str | None = None
    key_version_id: str | None = None

    def touched(self, key_id: str, key_version_id: str | None = None) -> None:
        self.key_id = key_id
        if key_version_id is not None:
            self.key_version_id = key_version_id


def system_principal(account_id: AccountId, job: str) -> Principal:
    """The principal a server job acts as: the key's own account, so policy and audit apply."""
    return Principal(account_id, job, actor="system")


def service_principal(account_id: AccountId, service: str) -> Principal:
    """An integrated cloud service acting in an account (creates and uses its service key)."""
    return Principal(account_id, service, actor="service")
