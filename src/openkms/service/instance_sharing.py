"""Instance sharing as a signed-in principal does it (the console's Instances page, F4.1 and F4.3):
the accounts an instance of the caller's account is shared with, its access quota and the units in
use, share and unshare, and the instances other accounts share with the caller's account.

Owns the authorization of these acts. The owner account's root may do them; a RAM user or role
session needs `kms:ShareKmsInstance` / `kms:UnshareKmsInstance` (and `kms:GetKmsInstance` to read
an instance's sharing, `kms:ListKmsInstances` to list the instances shared with its account) from
its identity policies, on the instance's ARN. An instance of another account is answered as missing
(no existence oracle). The administrator's CLI (`openkms instance share`) keeps acting as the
operator through `InstanceAccess`; both end in the same writes. Never changes a key or its policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openkms.domain.instance import Instance
from openkms.errors import InstanceNotFound, InvalidArgument
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.resource import Resource
from openkms.service.authorization import authorize, authorize_own
from openkms.service.context import RequestContext
from openkms.service.outcome import Outcome
from openkms.service.sharing import InstanceAccess

# Not API actions (the Alibaba API has no call for this; the guide shares through the console), so
# not `KmsAction` members: the names a RAM policy allows them by.
SHARE_ACTION = "kms:ShareKmsInstance"
UNSHARE_ACTION = "kms:UnshareKmsInstance"

_ACCOUNT_DIGITS = 16


@dataclass(frozen=True, slots=True)
class Share:
    account_id: str
    shared_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceSharing:
    """One instance of the caller's account as its Instances page shows it."""

    instance: Instance
    shared_with: tuple[Share, ...]
    quota: int  # how many other main accounts its key policies may grant
    holding: tuple[str, ...]  # accounts holding a unit of the quota now
    cooling: tuple[str, ...]  # accounts whose unit is returning (released less than the delay ago)

    @property
    def used(self) -> int:
        return len(self.holding) + len(self.cooling)


class InstanceSharingService:
    def __init__(self, db: Database, access: InstanceAccess) -> None:
        self._db = db
        self._access = access

    def sharing(self, ctx: RequestContext, instance_id: str) -> Outcome[InstanceSharing]:
        instance = self._own(ctx, instance_id)
        authorize_own(ctx, f"kms:{KmsAction.GET_KMS_INSTANCE}", instance.arn)
        quota, holding, cooling = self._access.usage(instance.instance_id)
        with self._db.unit_of_work() as uow:
            shares = tuple(Share(a, at) for a, at in uow.sharing.shared_with(instance.instance_id))
        view = InstanceSharing(instance, shares, quota, tuple(holding), tuple(cooling))
        return Outcome(view, _resource(instance))

    def share(self, ctx: RequestContext, instance_id: str, account_id: str) -> Outcome[bool]:
        """Share with another main account; False when it already was."""
        instance = self._own(ctx, instance_id)
        authorize_own(ctx, SHARE_ACTION, instance.arn)
        account_id = account_id.strip()
        if len(account_id) != _ACCOUNT_DIGITS or not account_id.isdigit():
            raise InvalidArgument("An account ID is 16 digits.")
        return Outcome(self._access.share(instance.instance_id, account_id), _resource(instance))

    def unshare(self, ctx: RequestContext, instance_id: str, account_id: str) -> Outcome[bool]:
        """Stop sharing; keys the other account made there stay its own. False when it was not shared."""
        instance = self._own(ctx, instance_id)
        authorize_own(ctx, UNSHARE_ACTION, instance.arn)
        return Outcome(self._access.unshare(instance.instance_id, account_id.strip()), _resource(instance))

    def shared_with_me(self, ctx: RequestContext) -> list[Instance]:
        """Instances of other accounts in the request's region shared with the caller's account."""
        authorize(ctx, KmsAction.LIST_KMS_INSTANCES)
        with self._db.unit_of_work() as uow:
            found = [uow.instances.get(i) for i in uow.sharing.shared_instances(ctx.principal.account_id)]
        return [i for i in found if i is not None and i.region_id == ctx.region_id]

    def _own(self, ctx: RequestContext, instance_id: str) -> Instance:
        with self._db.unit_of_work() as uow:
            instance = uow.instances.get(instance_id)
        if instance is None or instance.account_id != ctx.principal.account_id:
            raise InstanceNotFound()  # as GetKmsInstance answers: another account's is missing
        return instance


def _resource(instance: Instance) -> Resource:
    return Resource.instance(instance.region_id, instance.account_id, instance.instance_id)
