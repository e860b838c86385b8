"""The job scheduler of a server process: every `interval` seconds, if this process is the database's
job runner (the leader lock), run each job's steps through the request runner.

Every worker process starts one; only the lock holder works, and a follower takes over when the
holder dies (its PostgreSQL session or its file lock goes with it). A job failing is logged and
never stops the loop.

Fail closed, like requests (each step is one through the runner): before each step on a key the audit
sink is checked, and the step's record is written right after it. When the sink fails
(AuditUnavailable) the run stops there, so at most the one step whose record failed went unrecorded;
the next run starts again with the sink's check.

Each run also retries a scrub of destroyed key material that a busy SQLite WAL kept from finishing
(`scrub_pending`, logged as a warning until it is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from openkms.errors import AuditUnavailable
from openkms.jobs.steps import JOBS
from openkms.metrics import JOB_RUNS, JOB_STEPS
from openkms.service.container import Services
from openkms.service.runner import Runner

log = logging.getLogger("openkms.jobs")

HEALTH_CHECK_SECONDS = 60.0  # how often the leader asks hardware and external key stores how they are


class JobScheduler:
    def __init__(self, services: Services, runner: Runner, interval: float) -> None:
        self._services = services
        self._runner = runner
        self._interval = interval
        self._health_checked = -HEALTH_CHECK_SECONDS  # the first run checks the key stores
        self._lock = services.db.leader_lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def scrub_pending(self) -> bool:
        """A scrub of destroyed material could not finish (busy WAL); each run retries it."""
        return self._services.db.scrub_pending

    def start(self) -> None:
        if self._task is None and self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="openkms-jobs")

    def wake(self) -> None:
        """Run the jobs now rather than at the next interval (e.g. the dev clock moved)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._lock.release)

    async def _loop(self) -> None:
        while True:
            try:
                JOB_STEPS.inc(await self.run_once())
                JOB_RUNS.labels("ok").inc()
            except Exception:
                JOB_RUNS.labels("failed").inc()
                log.exception("the job runner failed; it tries again at the next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()

    async def run_once(self) -> int:
        """Run every job once if this process leads; the number of steps that acted (each recorded)."""
        if self._services.keystore.sealed:
            return 0
        if not await asyncio.to_thread(self._lock.try_acquire):
            return 0
        written = 0
        if self._services.db.scrub_pending and await asyncio.to_thread(self._services.db.scrub):
            log.info("the pending scrub of destroyed key material is done")
        try:
            for job in JOBS:
                due = await asyncio.to_thread(job.due, self._services)
                for key in due:
                    written += await job.step(self._services, self._runner, key)
        except AuditUnavailable:
            log.error("the audit sink is unavailable: the job run stops (%d events written)", written)
            raise
        now = time.monotonic()
        if now - self._health_checked >= HEALTH_CHECK_SECONDS:
            self._health_checked = now
            for instance in await asyncio.to_thread(self._services.key_stores.check_all):
                if instance.health is not None and not instance.health.ok:
                    log.warning(
                        "key store %s is unavailable: %s", instance.instance_id, instance.health.detail
                    )
        return written
