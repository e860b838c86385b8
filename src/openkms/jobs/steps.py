"""The job steps: rotate every key whose NextRotationDate passed; destroy every key whose DeleteDate
passed; destroy the imported material of every key whose MaterialExpireTime passed. Synchronous (they
call the blocking service layer); each returns the audit events to append.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from openkms.audit import AuditEvent, audit_time
from openkms.domain.key import Key
from openkms.errors import OpenKMSError
from openkms.service.container import Services
from openkms.service.context import RequestContext, system_principal

log = logging.getLogger("openkms.jobs")

ROTATION_JOB = "rotation-job"
DELETION_JOB = "deletion-job"
EXPIRY_JOB = "material-expiry-job"
BATCH = 100


def _context(key: Key, job: str) -> RequestContext:
    return RequestContext(str(uuid.uuid4()).upper(), system_principal(key.account_id, job), key.region_id)


def _event(
    services: Services, ctx: RequestContext, action: str, result: str, reason: str | None
) -> AuditEvent:
    return AuditEvent(
        request_id=ctx.request_id,
        time=audit_time(services.clock.now()),
        principal=ctx.principal.arn,
        account_id=ctx.principal.account_id,
        action=action,
        key_id=ctx.key_id,
        key_version_id=ctx.key_version_id,
        result=result,
        http_status=200 if result == "Success" else 500,
        source_ip=None,
        region=ctx.region_id,
        reason=reason,
        dev_clock=bool(getattr(services.clock, "dev", False)),
    )


def _each(
    services: Services, keys: list[Key], job: str, action: str, step: Callable[[RequestContext, Key], bool]
) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for key in keys:
        ctx = _context(key, job)
        try:
            if step(ctx, key):
                events.append(_event(services, ctx, action, "Success", None))
        except OpenKMSError as exc:
            log.warning("%s: %s on %s failed: %s", job, action, key.key_id, type(exc).__name__)
            events.append(_event(services, ctx, action, type(exc).__name__, exc.message))
        except Exception:
            log.exception("%s: %s on %s failed unexpectedly", job, action, key.key_id)
            events.append(_event(services, ctx, action, "InternalFailure", None))
    return events


def rotate_due_keys(services: Services) -> list[AuditEvent]:
    """Rotate every Enabled key whose NextRotationDate has passed (one new version each)."""
    due = services.lifecycle.due_for_rotation(BATCH)
    return _each(
        services,
        due,
        ROTATION_JOB,
        "CreateKeyVersion",
        lambda ctx, key: services.lifecycle.rotate_if_due(ctx, key.key_id).version is not None,
    )


def delete_due_keys(services: Services) -> list[AuditEvent]:
    """Destroy every PendingDeletion key whose DeleteDate has passed."""
    due = services.lifecycle.due_for_deletion(BATCH)
    return _each(
        services,
        due,
        DELETION_JOB,
        "DeleteKey",
        lambda ctx, key: services.lifecycle.destroy_if_due(ctx, key.key_id),
    )


def expire_due_material(services: Services) -> list[AuditEvent]:
    """Destroy the imported material of every key whose MaterialExpireTime has passed (it becomes
    PendingImport), and the wrapping keys of import tokens past their expiry."""
    services.key_import.expire_tokens(BATCH)
    due = services.key_import.due_for_expiry(BATCH)
    return _each(
        services,
        due,
        EXPIRY_JOB,
        "DeleteKeyMaterial",
        lambda ctx, key: services.key_import.expire_if_due(ctx, key.key_id),
    )


JOBS: tuple[Callable[[Services], list[AuditEvent]], ...] = (
    rotate_due_keys,
    delete_due_keys,
    expire_due_material,
)
