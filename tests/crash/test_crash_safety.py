"""Crash safety, measured (issue 13, item 6): SIGKILL at random moments during a mixed write load,
then every acknowledged request must still be there (tests/crash/check.py).

- On SQLite, the whole server is killed and started again on the same data dir, again and again.
- On SQLite and on PostgreSQL, one worker of two is killed while the other serves, and the
  supervisor replaces it; every few worker kills the whole server (supervisor and workers at once)
  goes too: the supervisor slows down the restarts of a worker that keeps dying, and a new server
  starts that count afresh.

Random but reproducible: OPENKMS_CRASH_SEED picks the moments and the load (printed; run with -s to
see the figures). OPENKMS_CRASH_SERVER_KILLS and OPENKMS_CRASH_WORKER_KILLS change the counts
(CI runs the defaults: 100 + 2 x (45 + 7), about five minutes on the 2-core reference machine).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_postgres_database
from tests.crash.check import check_server, verify_audit
from tests.crash.load import TIMEOUT, Client, call, summary
from tests.crash.model import USER_ACTIONS, Outcome
from tests.support.processes import kill, kill_server, worker_pids
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

CLIENTS = 4
SERVER_KILLS = int(os.environ.get("OPENKMS_CRASH_SERVER_KILLS", "100"))  # SQLite
WORKER_KILLS = int(os.environ.get("OPENKMS_CRASH_WORKER_KILLS", "45"))  # on each backend
WORKER_KILLS_PER_LIFE = 6  # then the whole server goes (each slot's restart delay stays short)
WORKER_AGE = 1.5  # seconds a worker has been up before it may be killed (so it is serving)
# The test is of durability, not of the tenant limits (tests/api/test_limits.py): its one account may
# take the whole (small) replay cache and any rate, so that no acknowledged request is a 429.
UNLIMITED = {
    "OPENKMS_NONCE_ACCOUNT_SHARE": "1",
    **{
        f"OPENKMS_RATE_{kind}_PER_{scope}": "0"
        for kind in ("CRYPTO", "MANAGEMENT", "RAM")
        for scope in ("ACCOUNT", "ACCESS_KEY")
    },
}

MIX = frozenset(
    {
        "CreateKey",
        "Encrypt",
        "TagResource",
        "UntagResource",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "CreateKeyVersion",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "EnableKey",
        "DisableKey",
        *USER_ACTIONS,
    }
)


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("OPENKMS_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\ncrash seed: OPENKMS_CRASH_SEED={value}")
    return value


@dataclass
class Run:
    """The load on one server and the figures of a run."""

    server: LiveServer
    seed: int
    stop: threading.Event = field(default_factory=threading.Event)
    clients: list[Client] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    server_kills: int = 0
    worker_kills: int = 0
    restarts: list[float] = field(default_factory=list)  # seconds from SIGKILL to serving again

    def start_load(self) -> None:
        with httpx.Client(timeout=60) as http:
            _, body = call(http, self.server.url, "ListKmsInstances", {})
        instance = str(body["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"])
        for index in range(CLIENTS):
            client = Client(index, self.server.url, instance, self.seed, self.stop)
            self.clients.append(client)
            self.threads.append(threading.Thread(target=client.run, name=f"crash-client-{index}"))
        for thread in self.threads:
            thread.start()

    def stop_load(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        for client in self.clients:
            assert client.error is None, f"client {client.index} failed: {client.error!r}"
            assert not client.timed_out, f"client {client.index}: a request had no answer in {TIMEOUT} s"

    def kill_and_restart(self) -> None:
        assert self.server.process is not None
        kill_server(self.server.process)
        self.server_kills += 1
        started = time.monotonic()
        self.server.start()
        self.restarts.append(time.monotonic() - started)

    def check(self) -> None:
        """Stop the load, crash once more, start, compare, stop cleanly, verify the audit log."""
        self.stop_load()
        self.kill_and_restart()  # the last kill also leaves rings behind for the start to recover
        ledgers = [client.ledger for client in self.clients]
        checking = time.monotonic()
        failures = check_server(self.server, [client.model for client in self.clients], ledgers)
        self.server.stop()
        failures += verify_audit(self.server, ledgers)
        counts = summary(self.clients)
        entries = [entry for client in self.clients for entry in client.ledger]
        refusals = Counter(
            f"{entry.action}: {(entry.body or {}).get('Code')}"
            for entry in entries
            if entry.outcome is Outcome.REFUSED
        )
        print(
            f"checked in {time.monotonic() - checking:.0f} s; refusals: "
            + ", ".join(f"{what} x{count}" for what, count in refusals.most_common(8))
        )
        print(
            f"kills: {self.server_kills} whole-server, {self.worker_kills} worker; requests: "
            f"{counts['acked']} acknowledged, {counts['refused']} refused, {counts['unknown']} unknown; "
            f"restart to serving (s): min {min(self.restarts):.2f}, median "
            f"{statistics.median(self.restarts):.2f}, max {max(self.restarts):.2f}"
        )
        faults = sum(1 for entry in entries if entry.body is not None and entry.outcome is Outcome.UNKNOWN)
        print(f"server faults (5xx answers): {faults}")
        for failure in failures:
            print("FAILURE:", failure)
        assert not failures, f"{len(failures)} failures, first: {failures[0]}"
        acked = {entry.action for entry in entries if entry.outcome is Outcome.ACKED}
        assert acked >= MIX, f"the load never had {sorted(MIX - acked)} acknowledged"
        assert counts["unknown"] > 0, "no kill ever caught a request in flight"


@pytest.fixture
def stopping() -> Iterator[list[LiveServer]]:
    """Servers to stop whatever happens to the test."""
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()


def test_whole_server_kills_on_sqlite_lose_nothing_acknowledged(
    tmp_path: Path, seed: int, stopping: list[LiveServer]
) -> None:
    moments = random.Random(seed)
    server = LiveServer(tmp_path / "data", extra_env=UNLIMITED)
    stopping.append(server)
    run = Run(server.start(), seed)
    run.start_load()
    try:
        for _ in range(SERVER_KILLS - 1):
            time.sleep(moments.uniform(0.05, 0.6))
            run.kill_and_restart()
    finally:
        run.stop.set()
    run.check()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_worker_kills_lose_nothing_acknowledged(
    tmp_path: Path, seed: int, stopping: list[LiveServer], backend: str
) -> None:
    moments = random.Random(seed + (1 if backend == "sqlite" else 2))
    database_url = new_postgres_database() if backend == "postgres" else None
    server = LiveServer(tmp_path / "data", database_url=database_url, workers=2, extra_env=UNLIMITED)
    stopping.append(server)
    run = Run(server.start(), seed)
    run.start_load()
    try:
        while run.worker_kills < WORKER_KILLS:
            first_seen: dict[int, float] = {}
            for _ in range(min(WORKER_KILLS_PER_LIFE, WORKER_KILLS - run.worker_kills)):
                time.sleep(moments.uniform(0.1, 0.6))
                victim = _serving_worker(server, first_seen)
                if kill(victim):
                    run.worker_kills += 1
            if run.worker_kills < WORKER_KILLS:
                run.kill_and_restart()
    finally:
        run.stop.set()
    run.check()


def _serving_worker(server: LiveServer, first_seen: dict[int, float]) -> int:
    """The worker that has been up longest, once it has been up `WORKER_AGE` seconds."""
    assert server.process is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = time.monotonic()
        workers = worker_pids(server.process.pid)
        for pid in workers:
            first_seen.setdefault(pid, now)
        ready = sorted((first_seen[pid], pid) for pid in workers if now - first_seen[pid] >= WORKER_AGE)
        if ready:
            return ready[0][1]
        time.sleep(0.05)
    raise AssertionError(f"no worker has been up for {WORKER_AGE} s:\n{server.log()}")
