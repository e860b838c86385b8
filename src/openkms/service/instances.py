"""Account- and region-level use cases: regions, the account's KMS status, key management instances."""

from __future__ import annotations

from collections.abc import Callable

from openkms.domain.instance import Instance
from openkms.errors import InstanceNotFound
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.types import AccountId, InstanceKind, RegionId

# The crypto requests per second an account may make by default (`rate_crypto_per_account`).
DEFAULT_SPEC = 2000


class InstanceService:
    def __init__(self, db: Database, *, spec: int = DEFAULT_SPEC) -> None:
        self._db = db
        self._spec = spec

    @property
    def spec(self) -> int:
        """An instance's computing performance as Alibaba states it (requests per second): here the
        crypto requests per second an account may make (`rate_crypto_per_account`)."""
        return self._spec

    def root_account(self) -> AccountId:
        """The store's first main account, made when the store was bootstrapped (the operator's own)."""
        with self._db.unit_of_work() as uow:
            return uow.accounts.account_ids()[0]

    def regions(self, ctx: RequestContext) -> list[RegionId]:
        authorize(ctx, KmsAction.DESCRIBE_REGIONS)
        with self._db.unit_of_work() as uow:
            return uow.accounts.region_ids()

    def account_status(self, ctx: RequestContext) -> str:
        authorize(ctx, KmsAction.DESCRIBE_ACCOUNT_KMS_STATUS)
        with self._db.unit_of_work() as uow:
            return uow.accounts.kms_status(ctx.principal.account_id) or "NotEnabled"

    def open_service(self, ctx: RequestContext) -> None:
        """The service is always open for an OpenKMS account; the call only has to be allowed."""
        authorize(ctx, KmsAction.OPEN_KMS_SERVICE)

    def list_instances(
        self,
        ctx: RequestContext,
        page_number: int,
        page_size: int,
        admit: Callable[[Instance], bool] | None = None,
    ) -> tuple[list[Instance], int]:
        """A page of the account's instances in the region (those `admit` takes), and their count."""
        authorize(ctx, KmsAction.LIST_KMS_INSTANCES)
        with self._db.unit_of_work() as uow:
            rows = uow.instances.in_region(ctx.principal.account_id, ctx.region_id)
        if admit is not None:
            rows = [row for row in rows if admit(row)]
        start = (page_number - 1) * page_size
        return rows[start : start + page_size], len(rows)

    def get_instance(self, ctx: RequestContext, instance_id: str) -> Instance:
        authorize(ctx, KmsAction.GET_KMS_INSTANCE)
        return self._own(ctx, instance_id)

    def get_quota_infos(self, ctx: RequestContext, instance_id: str) -> Instance:
        authorize(ctx, KmsAction.GET_KMS_INSTANCE_QUOTA_INFOS)
        return self._own(ctx, instance_id)

    def default_instance(self, ctx: RequestContext) -> Instance | None:
        """The account's first software instance in the region (made with the account), if any."""
        authorize(ctx, KmsAction.GET_DEFAULT_KMS_INSTANCE)
        with self._db.unit_of_work() as uow:
            rows = uow.instances.in_region(ctx.principal.account_id, ctx.region_id)
        return next((row for row in rows if row.kind is InstanceKind.SOFTWARE), None)

    def _own(self, ctx: RequestContext, instance_id: str) -> Instance:
        with self._db.unit_of_work() as uow:
            row = uow.instances.get(instance_id)
        if row is None or row.region_id != ctx.region_id or row.account_id != ctx.principal.account_id:
            raise InstanceNotFound()
        return row
