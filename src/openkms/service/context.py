"""Who is calling, from where, for which request; and what the audit record should name."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.types import AccountId, RegionId


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: AccountId
    name: str  # "root" for an account's own access key; RAM users and roles come with issue 6

    @property
    def arn(self) -> str:
        if self.name == "root":
            return f"acs:ram::{self.account_id}:root"
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
