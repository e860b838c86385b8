"""The job runner: exactly one leader per database (PostgreSQL advisory lock, SQLite file lock), and a
scheduler run appends one audit event per job step; a follower does nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from openkms.jobs.scheduler import JobScheduler
from openkms.repository.database import Database
from openkms.service.keys import CreateKeyRequest
from openkms.testing.audit import MemoryAuditSink
from tests.lifecycle.conftest import Stack


def test_one_leader_per_database(stack: Stack) -> None:
    db = stack.services.db
    other = Database(db.url)  # a second process's view of the same database
    try:
        first, second = db.leader_lock(), other.leader_lock()
        assert first.try_acquire()
        assert first.try_acquire()  # held: still ours
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
        second.release()
    finally:
        other.dispose()


def test_only_the_leader_runs_jobs_and_audits_each_step(stack: Stack) -> None:
    services = stack.services
    rotating = services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval="7d"
        ),
    )
    doomed = services.keys.create_key(stack.ctx(), CreateKeyRequest(instance_id=stack.instance_id))
    services.lifecycle.schedule_deletion(stack.ctx(), doomed.key_id, 7)
    stack.clock.advance(timedelta(days=8))
    leader_sink, follower_sink = MemoryAuditSink(), MemoryAuditSink()
    leader = JobScheduler(services, leader_sink, interval=60)
    follower = JobScheduler(services, follower_sink, interval=60)

    async def run() -> tuple[int, int, int]:
        first = await leader.run_once()
        second = await follower.run_once()
        again = await leader.run_once()
        await leader.stop()
        await follower.stop()
        return first, second, again

    assert asyncio.run(run()) == (2, 0, 0)
    assert follower_sink.events == []
    assert {(e.action, e.key_id, e.result) for e in leader_sink.events} == {
        ("CreateKeyVersion", rotating.key_id, "Success"),
        ("DeleteKey", doomed.key_id, "Success"),
    }
    assert all(not e.dev_clock and e.account_id == stack.account_id for e in leader_sink.events)


def test_a_sealed_keystore_runs_no_jobs(stack: Stack) -> None:
    services = stack.services
    services.keys.create_key(
        stack.ctx(),
        CreateKeyRequest(
            instance_id=stack.instance_id, enable_automatic_rotation=True, rotation_interval="7d"
        ),
    )
    stack.clock.advance(timedelta(days=8))
    services.keystore.seal()
    sink = MemoryAuditSink()
    scheduler = JobScheduler(services, sink, interval=60)
    assert asyncio.run(scheduler.run_once()) == 0
    asyncio.run(scheduler.stop())
    assert len(services.lifecycle.due_for_rotation()) == 1
