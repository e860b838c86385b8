"""The job steps: rotate every key whose NextRotationDate passed; destroy every key whose DeleteDate
passed; destroy the imported material of every key whose MaterialExpireTime passed. Synchronous (they
call the blocking service layer).

A `Job` lists the keys that are due and acts on one key at a time (`step`), returning that step's
audit event, so the scheduler can check the audit sink before each step and append the event right
after it: no key changes without its record. `rotate_due_keys` and `delete_due_keys` run every due
step at once and return the events, for callers that have no sink (tests, tools).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Job:
    """One kind of job: which keys are due, and what it does to one of them (True: it acted)."""

    name: str
    action: str
    due: Callable[[Services], list[Key]]
    act: Callable[[Services, RequestContext, Key], bool]

    def step(self, services: Services, key: Key) -> AuditEvent | None:
        """Act on one key; its audit event, or None when there was nothing to do (no longer due)."""
        ctx = _context(key, self.name)
        try:
            if self.act(services, ctx, key):
                return _event(services, ctx, self.action, "Success", None)
            return None
        except OpenKMSError as exc:
            log.warning("%s: %s on %s failed: %s", self.name, self.action, key.key_id, type(exc).__name__)
            return _event(services, ctx, self.action, type(exc).__name__, exc.message)
        except Exception:
            log.exception("%s: %s on %s failed unexpectedly", self.name, self.action, key.key_id)
            return _event(services, ctx, self.action, "InternalFailure", None)

    def run_all(self, services: Services) -> list[AuditEvent]:
        """Every due step now; the events they made (no audit sink: for tests and tools)."""
        events: list[AuditEvent] = []
        for key in self.due(services):
            event = self.step(services, key)
            if event is not None:
                events.append(event)
        return events


ROTATION = Job(
    ROTATION_JOB,
    "CreateKeyVersion",
    lambda services: services.lifecycle.due_for_rotation(BATCH),
    lambda services, ctx, key: services.lifecycle.rotate_if_due(ctx, key.key_id).version is not None,
)
DELETION = Job(
    DELETION_JOB,
    "DeleteKey",
    lambda services: services.lifecycle.due_for_deletion(BATCH),
    lambda services, ctx, key: services.lifecycle.destroy_if_due(ctx, key.key_id),
)


def _material_due(services: Services) -> list[Key]:
    """Keys past their MaterialExpireTime; first the wrapping keys of expired import tokens go."""
    services.key_import.expire_tokens(BATCH)
    return services.key_import.due_for_expiry(BATCH)


EXPIRY = Job(
    EXPIRY_JOB,
    "DeleteKeyMaterial",
    _material_due,
    lambda services, ctx, key: services.key_import.expire_if_due(ctx, key.key_id),
)
JOBS: tuple[Job, ...] = (ROTATION, DELETION, EXPIRY)


def rotate_due_keys(services: Services) -> list[AuditEvent]:
    """Rotate every Enabled key whose NextRotationDate has passed (one new version each)."""
    return ROTATION.run_all(services)


def delete_due_keys(services: Services) -> list[AuditEvent]:
    """Destroy every PendingDeletion key whose DeleteDate has passed."""
    return DELETION.run_all(services)


def expire_due_material(services: Services) -> list[AuditEvent]:
    """Destroy the imported material of every key whose MaterialExpireTime has passed (it becomes
    PendingImport), and the wrapping keys of import tokens past their expiry."""
    return EXPIRY.run_all(services)
