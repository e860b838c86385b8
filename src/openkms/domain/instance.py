"""A key management instance as the service layer hands it out (software today; hardware and
external instances later), with the ARN the API names it by. Pure value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openkms.types import AccountId, InstanceId, InstanceKind, RegionId

__all__ = ["Instance"]


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: InstanceId
    account_id: AccountId
    region_id: RegionId
    kind: InstanceKind
    name: str
    created_at: datetime
    key_count: int

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:keystore/{self.instance_id}"
