"""An alias: a name unique per account and region that points at one key. Pure value."""

from __future__ import annotations

from dataclasses import dataclass

from openkms.types import AccountId, KeyId, RegionId

__all__ = ["Alias"]


@dataclass(frozen=True, slots=True)
class Alias:
    account_id: AccountId
    region_id: RegionId
    name: str
    key_id: KeyId

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:{self.name}"
