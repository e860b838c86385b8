"""The job scheduler of a server process: every `interval` seconds, if this process holds the store's
jobs lease, run each job's steps through the request runner.

Every worker process of every node starts one. Each tries to take or renew the lease
(`repository/leases.py`) every `lease/3` seconds; only the holder works. A holder that dies or hangs
stops renewing, loses the lease `lease` seconds after its last renewal, and another process takes it
within `lease/3` more. Every step commits only while its fence still holds (fencing: a holder that
lost its lease, even one that wakes up mid-run, commits nothing more), and the holder renews between
steps, so a long run keeps its lease. The leader also carries on a KEK rotation's rewrap (a few
batches a run) and sweeps the shared replay cache. A job failing is logged and never stops the loop.

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

from openkms.domain.lease import Fence
from openkms.errors import AuditUnavailable, LeaseLost
from openkms.jobs.steps import JOBS
from openkms.metrics import JOB_RUNS, JOB_STEPS
from openkms.service.container import Services
from openkms.service.keyring_rewrap import KeyringRotation
from openkms.service.runner import Runner

log = logging.getLogger("openkms.jobs")

HEALTH_CHECK_SECONDS = 60.0  # how often the leader asks hardware and external key stores how they are
LEASE_SECONDS = 15.0  # a leader that stops renewing loses the jobs lease this long after its last renewal
JOBS_LEASE = "jobs"


class JobScheduler:
    def __init__(
        self, services: Services, runner: Runner, interval: float, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._services = services
        self._runner = runner
        self._interval = interval
        self._health_checked = -HEALTH_CHECK_SECONDS  # the first run checks the key stores
        self._lease = services.db.lease(JOBS_LEASE, lease_seconds)
        self._renew_every = lease_seconds / 3
        self._renewed = -lease_seconds
        self._fence: Fence | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._rewrap = KeyringRotation(services.db, services.keystore)

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
        if self._fence is not None:
            self._fence = None
            await asyncio.to_thread(self._lease.release)

    @property
    def leading(self) -> bool:
        """This process held the jobs lease at its last renewal."""
        return self._fence is not None

    async def _loop(self) -> None:
        last_run = -self._interval
        while True:
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken or time.monotonic() - last_run >= self._interval:
                    last_run = time.monotonic()
                    JOB_STEPS.inc(await self.run_once())
                    JOB_RUNS.labels("ok").inc()
                else:
                    await self._hold()
            except Exception:
                JOB_RUNS.labels("failed").inc()
                log.exception("the job runner failed; it tries again at the next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(self._interval, self._renew_every))

    async def _hold(self) -> Fence | None:
        """Take or renew the lease; the fence held now, or None (another process leads)."""
        fence = await asyncio.to_thread(self._lease.acquire)
        if fence is None:
            if self._fence is not None:
                log.warning("this process lost the jobs lease")
        elif self._fence is None or fence.value != self._fence.value:
            log.info("this process holds the jobs lease (fence %d)", fence.value)
        self._fence = fence
        self._renewed = time.monotonic()
        return fence

    async def _still_leading(self) -> bool:
        """Between steps: renew when a third of the lease has passed; False once it is lost."""
        held = self._fence
        if held is None:
            return False
        if time.monotonic() - self._renewed < self._renew_every:
            return True
        fence = await self._hold()
        return fence is not None and fence.value == held.value

    async def run_once(self) -> int:
        """Run every job once if this process leads; the number of steps that acted (each recorded)."""
        if self._services.keystore.sealed:
            return 0
        fence = await self._hold()
        if fence is None:
            return 0
        with self._services.db.fenced(fence):
            return await self._run_jobs()

    async def _run_jobs(self) -> int:
        written = [0]
        try:
            await self._steps(written)
            await self._housekeeping()
        except AuditUnavailable:
            log.error("the audit sink is unavailable: the job run stops (%d events written)", written[0])
            raise
        except LeaseLost:
            log.warning("the job run stops: the jobs lease was lost (%d steps done)", written[0])
            self._fence = None
        return written[0]

    async def _steps(self, written: list[int]) -> None:
        if self._services.db.scrub_pending and await asyncio.to_thread(self._services.db.scrub):
            log.info("the pending scrub of destroyed key material is done")
        for job in JOBS:
            due = await asyncio.to_thread(job.due, self._services)
            for key in due:
                if not await self._still_leading():
                    raise LeaseLost()
                written[0] += await job.step(self._services, self._runner, key)

    async def _housekeeping(self) -> None:
        # A KEK rotation's rewrap goes on in the background even if `openkms keyring rotate` was
        # stopped: a few batches a run, nothing once every row is under the active term.
        if not await self._still_leading():
            raise LeaseLost()
        rewrapped = await asyncio.to_thread(self._rewrap.run_step)
        if rewrapped:
            log.info("keyring: %d wrapped rows moved to the active term", rewrapped)
        swept = await asyncio.to_thread(self._services.db.sweep_shared_state)
        if swept:
            log.info("swept %d expired entries of the shared replay cache", swept)
        now = time.monotonic()
        if now - self._health_checked >= HEALTH_CHECK_SECONDS:
            self._health_checked = now
            for instance in await asyncio.to_thread(self._services.key_stores.check_all):
                if instance.health is not None and not instance.health.ok:
                    log.warning(
                        "key store %s is unavailable: %s", instance.instance_id, instance.health.detail
                    )
