"""In-process costs of two per-request components the bare ceiling leaves out.

- `SharedNonceStore.remember` (openkms.node.nonces): one call per request, fresh nonce each time, one
  process, the server's default geometry (`Settings.replay_cache_slots`, max_probe 32). `MemoryNonceStore` is
  measured too, as a reference for what the cross-process table costs over a dict.
- The per-tenant checks (openkms.node.rate_limits, the account share in openkms.node.nonces): what
  a request pays on top of the bare `remember`, that is `remember` with the account and the rate
  limiter's `admit` inside it, the server's default limits raised out of reach (`rate_limit_cost`).
- `JsonlAuditSink.append` (openkms.audit) with fsync: appends/s when N tasks of one (uvloop) event loop
  append as fast as they can; the sink group-commits, so the mean batch (appends per write+fsync) is
  reported alongside, and the process CPU (all threads, user + system) per append and per batch.

Run alone: `python -m bench.micro` (prints JSON).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from openkms.audit import AuditEvent, JsonlAuditSink
from openkms.config import Settings
from openkms.node.nonces import MemoryNonceStore, NonceStore, SharedNonceStore
from openkms.node.rate_limits import RateClass, SharedRateLimiter
from openkms.server.runtime import tenant_limits

_ACCESS_KEY_ID = "LTAIbenchMicro000001"
_WINDOW = 900.0


def _time_nonce_store(store: NonceStore, batch: int, repeats: int) -> list[float]:
    """Microseconds per `remember` for `repeats` batches of `batch` fresh nonces."""
    per_call: list[float] = []
    for _ in range(repeats):
        nonces = [str(uuid.uuid4()) for _ in range(batch)]
        now = time.time()
        expires = now + _WINDOW
        remember = store.remember
        started = time.perf_counter()
        for nonce in nonces:
            if not remember(_ACCESS_KEY_ID, nonce, expires, now):
                raise RuntimeError("a fresh nonce was reported as a replay")
        per_call.append((time.perf_counter() - started) / batch * 1e6)
    return per_call


def nonce_store_cost(batch: int = 100_000, repeats: int = 5) -> dict[str, Any]:
    slots = Settings().replay_cache_slots
    with tempfile.TemporaryDirectory(prefix="openkms-bench-nonces-") as folder:
        shared = SharedNonceStore(Path(folder) / "nonces.shm", slots=slots)
        try:
            _time_nonce_store(shared, 10_000, 1)  # warm: page in the first table pages, code paths
            shared_us = _time_nonce_store(shared, batch, repeats)
        finally:
            shared.close()
    memory = MemoryNonceStore()
    _time_nonce_store(memory, 10_000, 1)
    memory_us = _time_nonce_store(memory, batch, repeats)
    return {
        "shared_us_per_call": round(statistics.median(shared_us), 3),
        "shared_runs_us": [round(x, 3) for x in shared_us],
        "memory_us_per_call": round(statistics.median(memory_us), 3),
        "memory_runs_us": [round(x, 3) for x in memory_us],
        "slots": slots,
        "calls_per_run": batch,
        "runs": repeats,
        "note": "single process, fresh uuid4 nonce per call; median of the runs",
    }


def _time_checked(
    store: SharedNonceStore, limiter: SharedRateLimiter, batch: int, repeats: int
) -> list[float]:
    """Microseconds per `remember` with the account share and the rate limits, as the dispatcher calls it."""
    per_call: list[float] = []
    for _ in range(repeats):
        nonces = [str(uuid.uuid4()) for _ in range(batch)]
        now = time.time()
        expires = now + _WINDOW
        remember, admit = store.remember, limiter.admit
        started = time.perf_counter()
        for nonce in nonces:
            checked = remember(
                _ACCESS_KEY_ID,
                nonce,
                expires,
                now,
                account="1234567890123456",
                admit=lambda a=admit, t=now: a("1234567890123456", _ACCESS_KEY_ID, RateClass.CRYPTO, t),
            )
            if not checked:
                raise RuntimeError("a fresh nonce was reported as a replay")
        per_call.append((time.perf_counter() - started) / batch * 1e6)
    return per_call


def rate_limit_cost(batch: int = 100_000, repeats: int = 5) -> dict[str, Any]:
    """`remember` alone and with the per-tenant checks, alternating runs on one table."""
    settings = Settings(
        rate_crypto_per_account=10_000_000, rate_crypto_per_access_key=10_000_000, nonce_account_share=1.0
    )
    with tempfile.TemporaryDirectory(prefix="openkms-bench-limits-") as folder:
        store = SharedNonceStore(
            Path(folder) / "nonces.shm", slots=settings.replay_cache_slots, account_share=1 << 30
        )
        limiter = SharedRateLimiter(Path(folder) / "rate-limits.shm", tenant_limits(settings))
        try:
            _time_checked(store, limiter, 10_000, 1)
            bare: list[float] = []
            checked: list[float] = []
            for _ in range(repeats):
                bare += _time_nonce_store(store, batch // 2, 1)
                checked += _time_checked(store, limiter, batch // 2, 1)
        finally:
            store.close()
            limiter.close()
    return {
        "remember_us_per_call": round(statistics.median(bare), 3),
        "checked_us_per_call": round(statistics.median(checked), 3),
        "checks_us_per_call": round(statistics.median(checked) - statistics.median(bare), 3),
        "runs_us": {"remember": [round(x, 3) for x in bare], "checked": [round(x, 3) for x in checked]},
        "note": "single process; checked = remember(account=..., admit=rate limiter admit), one account",
    }


def _event(index: int) -> AuditEvent:
    """One realistic event (built once per task, so the uuid calls stay out of the timing)."""
    return AuditEvent(
        request_id=str(uuid.uuid4()).upper(),
        time="2026-11-28T12:00:00.000Z",
        principal="acs:ram::1234567890123456:root",
        account_id="1234567890123456",
        action="Encrypt",
        key_id="key-" + str(index % 16),
        key_version_id=str(uuid.uuid4()),
        result="Success",
        http_status=200,
        source_ip="127.0.0.1",
        region="cn-hangzhou",
        reason=None,
    )


async def _append_for(sink: JsonlAuditSink, tasks: int, seconds: float) -> int:
    deadline = time.perf_counter() + seconds
    counts = [0] * tasks

    async def worker(slot: int) -> None:
        event = _event(slot)
        while time.perf_counter() < deadline:
            await sink.append(event)
            counts[slot] += 1

    await asyncio.gather(*(worker(slot) for slot in range(tasks)))
    return sum(counts)


def _audit_case(folder: Path, tasks: int, seconds: float, fsync: bool) -> dict[str, Any]:
    import uvloop

    async def main() -> tuple[int, float, int, float]:
        sink = JsonlAuditSink(folder / f"audit-{tasks}-{int(fsync)}.jsonl", fsync=fsync)
        try:
            await _append_for(sink, tasks, 0.3)  # warm-up
            batches_before = sink.batches
            started, cpu_started = time.perf_counter(), time.process_time()
            done = await _append_for(sink, tasks, seconds)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            return done, elapsed, sink.batches - batches_before, cpu
        finally:
            await sink.aclose()

    done, elapsed, batches, cpu = uvloop.run(main())
    return {
        "tasks": tasks,
        "fsync": fsync,
        "appends_per_s": round(done / elapsed),
        "fsyncs_per_s" if fsync else "writes_per_s": round(batches / elapsed),
        "mean_batch": round(done / batches, 1) if batches else None,
        "cpu_us_per_append": round(cpu / done * 1e6, 1) if done else None,
        "cpu_us_per_batch": round(cpu / batches * 1e6, 1) if batches else None,
    }


def audit_append_cost(
    seconds: float = 2.0, concurrency: tuple[int, ...] = (1, 32, 256), base_dir: Path | None = None
) -> list[dict[str, Any]]:
    """`base_dir`: where the temporary audit files go (use the server's filesystem); default: TMPDIR."""
    with tempfile.TemporaryDirectory(prefix="openkms-bench-audit-", dir=base_dir) as folder:
        cases = [_audit_case(Path(folder), tasks, seconds, True) for tasks in concurrency]
        cases.append(_audit_case(Path(folder), max(concurrency), seconds, False))
    return cases


def main() -> None:
    print(
        json.dumps(
            {
                "nonce_store": nonce_store_cost(),
                "rate_limits": rate_limit_cost(),
                "audit": audit_append_cost(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
