"""Who is calling, from where, for which request; and what the audit record should name."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.types import AccountId, RegionId


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: AccountId
    name: str  # "root" for an account's own access key; RAM users and roles come with issue 6
    # "user" for callers with an access key; "service" for an integrated cloud service (it may manage
    # service keys, alias/acs/<service>); "system" for the server's own jobs.
    kind: str = "user"

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def arn(self) -> str:
        if self.name == "root":
            return f"acs:ram::{self.account_id}:root"
        if self.kind == "system":
            return f"acs:kms::{self.account_id}:system/{self.name}"
        if self.kind == "service":
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
    return Principal(account_id, job, kind="system")


def service_principal(account_id: AccountId, service: str) -> Principal:
    """An integrated cloud service acting in an account (creates and uses its service key)."""
    return Principal(account_id, service, kind="service")
