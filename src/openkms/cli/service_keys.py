"""`openkms service-key create`: make a service's key in the root account, audited like a request."""

from __future__ import annotations

import asyncio
import uuid

from openkms.api.app import _audit_path
from openkms.audit import AuditEvent, JsonlAuditSink, audit_time
from openkms.clock import SystemClock
from openkms.config import Settings
from openkms.keystore import Keystore
from openkms.node.generation import LocalGeneration
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.service.container import build_services
from openkms.service.context import RequestContext, service_principal
from openkms.service.seal import root_of_trust
from openkms.types import RegionId


def create_service_key(settings: Settings, service: str, region: str) -> tuple[str, bool]:
    if region not in settings.regions:
        raise ValueError(f"region {region!r} is not one of {', '.join(settings.regions)}")
    root = root_of_trust(settings, passphrase=settings.unseal_passphrase)
    if root is None:
        raise ValueError("the key store is sealed: set OPENKMS_UNSEAL_PASSPHRASE for this command")
    db = Database(settings.effective_database_url)
    try:
        keystore = Keystore(None, DatabaseKeyringStore(db.engine))
        keystore.unseal(root)
        clock = SystemClock()
        services = build_services(db, keystore, clock, LocalGeneration(), cache_ttl=0.0)
        with db.unit_of_work() as uow:
            account = uow.accounts.account_ids()[0]
        principal = service_principal(account, service)
        ctx = RequestContext(str(uuid.uuid4()).upper(), principal, RegionId(region))
        key, created = services.service_keys.ensure(ctx, service)
        keystore.seal()
        if created:
            _audit(settings, ctx, clock)
        return key.key_id, created
    finally:
        db.dispose()


def _audit(settings: Settings, ctx: RequestContext, clock: SystemClock) -> None:
    sink = JsonlAuditSink(_audit_path(settings.data_dir), fsync=settings.audit_fsync)

    async def write() -> None:
        await sink.append(
            AuditEvent(
                request_id=ctx.request_id,
                time=audit_time(clock.now()),
                principal=ctx.principal.arn,
                account_id=ctx.principal.account_id,
                action="CreateKey",
                key_id=ctx.key_id,
                key_version_id=ctx.key_version_id,
                result="Success",
                http_status=200,
                source_ip=None,
                region=ctx.region_id,
                reason="openkms service-key create",
            )
        )
        await sink.aclose()

    asyncio.run(write())
