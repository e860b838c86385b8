"""A key management instance as the service layer hands it out, with the ARN the API names it by.

Three kinds (F1.2-F1.4): software (material wrapped by the server's keystore), hardware (material
generated and used inside an HSM, reached through PKCS#11) and external (material held by the
customer's key manager, reached through an XKS proxy). `settings` are the kind's non-secret settings
(module path, token, PIN source; proxy endpoint, path prefix, access key id, CA file); a secret (the
proxy's SigV4 secret key) is stored sealed beside them, never here. `revision` grows with every
change of the settings, so providers made from old settings are made again. Pure value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from openkms.types import AccountId, InstanceId, InstanceKind, RegionId

__all__ = ["Instance", "InstanceHealth"]


@dataclass(frozen=True, slots=True)
class InstanceHealth:
    """The last health check of an instance's backend: `ok`, what it said, and when."""

    ok: bool
    detail: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Instance:
    instance_id: InstanceId
    account_id: AccountId
    region_id: RegionId
    kind: InstanceKind
    name: str
    created_at: datetime
    key_count: int
    settings: Mapping[str, str] = field(default_factory=dict)
    revision: int = 0
    health: InstanceHealth | None = None

    @property
    def arn(self) -> str:
        return f"acs:kms:{self.region_id}:{self.account_id}:keystore/{self.instance_id}"
