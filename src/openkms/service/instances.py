"""Account- and region-level use cases: regions, the account's KMS status, key management instances."""

from __future__ import annotations

from openkms.domain.instance import Instance
from openkms.errors import InstanceNotFound
from openkms.policy.actions import KmsAction
from openkms.repository.database import Database
from openkms.service.authorization import authorize
from openkms.service.context import RequestContext
from openkms.types import AccountId, RegionId


class InstanceService:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        self, ctx: RequestContext, page_number: int, page_size: int
    ) -> tuple[list[Instance], int]:
        authorize(ctx, KmsAction.LIST_KMS_INSTANCES)
        with self._db.unit_of_work() as uow:
            rows = uow.instances.in_region(ctx.principal.account_id, ctx.region_id)
        start = (page_number - 1) * page_size
        return rows[start : start + page_size], len(rows)

    def get_instance(self, ctx: RequestContext, instance_id: str) -> Instance:
        authorize(ctx, KmsAction.GET_KMS_INSTANCE)
        with self._db.unit_of_work() as uow:
            row = uow.instances.get(instance_id)
        if row is None or row.region_id != ctx.region_id or row.account_id != ctx.principal.account_id:
            raise InstanceNotFound()
        return row
