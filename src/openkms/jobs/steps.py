"""The job steps: rotate every key whose NextRotationDate passed; destroy every key whose DeleteDate
passed; destroy the imported material of every key whose MaterialExpireTime passed; delete every
secret whose recovery window (PlannedDeleteTime) ended. Each step on one key or secret is a request
of a system principal (its own account) through the runner, so it is authorized, refused while
sealed and audited (fail closed) like an API call, with the same fields.

A `Job` lists the keys (or secrets) that are due and acts on one at a time (`step`); a step that finds
its subject no longer due (another node won) does nothing and records nothing. Managed secrets
(OpenKMS.PostgreSQL, docs/secrets.md) are rotated when their NextRotationDate passes, and a rotation
left half done is finished, by the secret rotation job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openkms.domain.key import Key
from openkms.domain.secrets import Secret
from openkms.errors import AuditUnavailable, LeaseLost, OpenKMSError
from openkms.service.container import Services
from openkms.service.context import Door, RequestContext, system_principal
from openkms.service.ids import new_request_id
from openkms.service.outcome import Outcome
from openkms.service.runner import Runner

log = logging.getLogger("openkms.jobs")

ROTATION_JOB = "rotation-job"
DELETION_JOB = "deletion-job"
EXPIRY_JOB = "material-expiry-job"
SECRET_DELETION_JOB = "secret-deletion-job"  # noqa: S105 (a job name)
SECRET_ROTATION_JOB = "secret-rotation-job"  # noqa: S105 (a job name)
BATCH = 100


class Subject(Protocol):
    """What a job acts on (a key, a secret): it names the account and region it acts in."""

    @property
    def account_id(self) -> Any: ...
    @property
    def region_id(self) -> Any: ...


# What a job does to one subject, as the use case's outcome: `acted` False when it was no longer due.
Act = Callable[[Services, RequestContext, Any], "Outcome[object]"]


@dataclass(frozen=True, slots=True)
class Job:
    """One kind of job: which keys (or secrets) are due, and what it does to one of them."""

    name: str
    action: str
    due: Callable[[Services], Sequence[Subject]]
    act: Act

    async def step(self, services: Services, runner: Runner, key: Subject) -> bool:
        """Act on one key through the runner; True when it acted (and its record was written).
        Raises `AuditUnavailable` when the record could not be written: the caller stops there."""
        ctx = RequestContext(
            new_request_id(),
            system_principal(key.account_id, self.name),
            key.region_id,
            door=Door.JOB,
            received_at=services.clock.timestamp(),
        )

        def use_case() -> Outcome[bool]:
            done = self.act(services, ctx, key)
            return Outcome(done.acted, done.resource, acted=done.acted)

        try:
            return await runner.run(ctx, self.action, use_case)
        except (AuditUnavailable, LeaseLost):
            raise
        except OpenKMSError as exc:
            log.warning("%s: %s in %s failed: %s", self.name, self.action, key.account_id, type(exc).__name__)
            return True  # the failure is recorded


def _rotate(services: Services, ctx: RequestContext, key: Key) -> Outcome[object]:
    return services.lifecycle.rotate_if_due(ctx, key.key_id)


def _destroy(services: Services, ctx: RequestContext, key: Key) -> Outcome[object]:
    return services.lifecycle.destroy_if_due(ctx, key.key_id)


def _material_due(services: Services) -> list[Key]:
    """Keys past their MaterialExpireTime; first the wrapping keys of expired import tokens go."""
    services.key_import.expire_tokens(BATCH)
    return services.key_import.due_for_expiry(BATCH)


def _expire(services: Services, ctx: RequestContext, key: Key) -> Outcome[object]:
    return services.key_import.expire_if_due(ctx, key.key_id)


ROTATION = Job(
    ROTATION_JOB,
    "CreateKeyVersion",
    lambda services: services.lifecycle.due_for_rotation(BATCH),
    _rotate,
)
DELETION = Job(
    DELETION_JOB, "DeleteKey", lambda services: services.lifecycle.due_for_deletion(BATCH), _destroy
)
EXPIRY = Job(EXPIRY_JOB, "DeleteKeyMaterial", _material_due, _expire)


def _delete_secret(services: Services, ctx: RequestContext, secret: Secret) -> Outcome[object]:
    return services.secrets.destroy_if_due(ctx, secret.secret_id)


SECRET_DELETION = Job(
    SECRET_DELETION_JOB,
    "DeleteSecret",
    lambda services: services.secrets.due_for_deletion(BATCH),
    _delete_secret,
)


def _rotate_secret(services: Services, ctx: RequestContext, secret: Secret) -> Outcome[object]:
    return services.secret_rotation.rotate_if_due(ctx, secret.secret_id)


SECRET_ROTATION = Job(
    SECRET_ROTATION_JOB,
    "RotateSecret",
    lambda services: services.secret_rotation.due_for_rotation(BATCH),
    _rotate_secret,
)
JOBS: tuple[Job, ...] = (ROTATION, DELETION, EXPIRY, SECRET_DELETION, SECRET_ROTATION)
