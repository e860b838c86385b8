"""Run the server's jobs in a test: through the real runner, with an audit sink the test holds.

`rotate_due_keys`, `delete_due_keys` and `expire_due_material` run every due step now and return the
records they wrote; `job_scheduler` is the server's scheduler on the test's sink.
"""

from __future__ import annotations

import asyncio

from openkms.audit import AuditEvent, AuditSink
from openkms.jobs.scheduler import JobScheduler
from openkms.jobs.steps import DELETION, EXPIRY, ROTATION, Job
from openkms.server.runtime import describe_error
from openkms.service.container import Services
from openkms.service.runner import Runner
from openkms.testing.audit import MemoryAuditSink

__all__ = ["delete_due_keys", "expire_due_material", "job_scheduler", "rotate_due_keys", "runner_for"]


def runner_for(services: Services, sink: AuditSink) -> Runner:
    """The request runner of `services`, writing to `sink`."""
    return Runner(services.keystore, sink, services.usage, services.clock, describe_error)


def job_scheduler(services: Services, sink: AuditSink, interval: float) -> JobScheduler:
    return JobScheduler(services, runner_for(services, sink), interval)


def _run_due(job: Job, services: Services) -> list[AuditEvent]:
    sink = MemoryAuditSink()
    runner = runner_for(services, sink)

    async def run() -> None:
        for key in job.due(services):
            await job.step(services, runner, key)

    asyncio.run(run())
    return sink.events


def rotate_due_keys(services: Services) -> list[AuditEvent]:
    """Rotate every Enabled key whose NextRotationDate has passed (one new version each)."""
    return _run_due(ROTATION, services)


def delete_due_keys(services: Services) -> list[AuditEvent]:
    """Destroy every PendingDeletion key whose DeleteDate has passed."""
    return _run_due(DELETION, services)


def expire_due_material(services: Services) -> list[AuditEvent]:
    """Destroy the imported material of every key past its MaterialExpireTime."""
    return _run_due(EXPIRY, services)
