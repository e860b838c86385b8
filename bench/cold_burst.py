"""The `cold-burst` scenario of `make bench`: does a burst of requests that miss every cache stall the
warm requests served next to them?

Use cases on the hot path run on the event loop and move to a worker thread when they would read the
database (`openkms.service.offload`). If anything still waited on the database on the loop, every
request of that worker would queue behind the round trip; this scenario measures whether that shows.

Per database (PostgreSQL on a fresh database that is dropped afterwards, and SQLite in the data dir):

1. one `openkms serve` with a fresh store; through the real API a warm key (root's credential), and
   `targets` cold keys, each with an alias, and as many RAM users, each with an access key and
   AliyunKMSFullAccess;
2. warm: Encrypt on the warm key at `warm_connections`; burst: at `burst_connections`, Encrypt and
   DescribeKey alternately, request i signed by user i and naming alias i, so each burst request
   misses the credential, alias and key caches (and Encrypt the key-version cache) until the file
   comes round again, `targets` requests later (reported as `revisit_s`, to compare with the cache TTL);
3. `runs` pairs of runs, in alternating order (a, b, b, a, ...): (a) warm alone for `duration`
   seconds; (b) the burst starts, `LEAD` seconds later the same warm run, and the burst goes on
   `LEAD` seconds after it ends, so the whole warm run is under the burst.

Owns the scenario and its report; every server, wrk run and CPU figure comes from bench/harness.py.
Never leaves a server or a database behind: both are undone by an ExitStack, on failure too.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import (
    NOISE_CORES,
    BackgroundWrk,
    ManagedServer,
    RunResult,
    UsageMeter,
    audit_outcomes,
    log,
    loud,
    openkms_server,
    run_wrk,
    server_log_issues,
)
from bench.presign import Credentials, SignedCall, rpc_call, write_request_file, write_varied_request_file
from openkms.config import Settings

BACKENDS = ("postgres", "sqlite")
RAM_VERSION = "2015-05-01"
ENCRYPTION_CONTEXT = '{"app":"billing","purpose":"bench-cold"}'
LEAD = 1.0  # seconds the burst runs before the warm run starts, and after it ends
SETUP_THREADS = 8  # concurrent API calls while creating the keys, aliases and users
HEADROOM = 1.3  # as in run.py: requests signed per second = min(cap, 2 x warm-up rate) x HEADROOM
BURST_WARMUP_RATE = 5000.0  # req/s the burst's warm-up file is signed for (it measures the real rate)


@dataclass(frozen=True)
class ColdPlan:
    backends: tuple[str, ...]
    targets: int
    warm_connections: int
    burst_connections: int
    duration: float
    warmup: float
    runs: int
    workers: int
    threads: int
    max_rate: float
    postgres_admin_url: str
    server_env: Mapping[str, str]

    @property
    def cache_ttl(self) -> float:
        raw = self.server_env.get("OPENKMS_CACHE_TTL_SECONDS")
        return float(raw) if raw else Settings().cache_ttl_seconds


# ----------------------------------------------------------------------------------------------------
# fixture


@dataclass(frozen=True)
class ColdFixture:
    instance_id: str
    warm_key_id: str
    warm: Mapping[str, str]  # the warm Encrypt's parameters
    burst: Sequence[SignedCall]  # one call per cold target, in file order


def _parallel(count: int, make: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        return list(pool.map(make, range(count)))


def make_cold_fixture(url: str, root: Credentials, targets: int) -> ColdFixture:
    """The warm key and `targets` cold (key, alias, RAM user + access key) triples, all through the API."""
    instances = rpc_call(url, root, "ListKmsInstances")["KmsInstances"]["KmsInstance"]
    instance_id = str(instances[0]["KmsInstanceId"])
    warm_key_id = str(rpc_call(url, root, "CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])
    plaintext = base64.b64encode(os.urandom(48)).decode()  # 64 bytes of text, as in the steady rows

    def cold_key(index: int) -> str:
        key_id = str(rpc_call(url, root, "CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])
        alias = f"alias/bench-cold-{index:06d}"
        rpc_call(url, root, "CreateAlias", KeyId=key_id, AliasName=alias)
        return alias

    def cold_user(index: int) -> Credentials:
        name = f"bench-cold-{index:06d}"
        rpc_call(url, root, "CreateUser", Version=RAM_VERSION, UserName=name)
        created = rpc_call(url, root, "CreateAccessKey", Version=RAM_VERSION, UserName=name)["AccessKey"]
        rpc_call(
            url, root, "AttachPolicyToUser", Version=RAM_VERSION,
            UserName=name, PolicyType="System", PolicyName="AliyunKMSFullAccess",
        )  # fmt: skip
        return Credentials(str(created["AccessKeyId"]), str(created["AccessKeySecret"]))

    started = time.monotonic()
    aliases: list[str] = _parallel(targets, cold_key)
    log(f"  {targets:,} cold keys with an alias each in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    users: list[Credentials] = _parallel(targets, cold_user)
    log(f"  {targets:,} RAM users with an access key each in {time.monotonic() - started:.0f} s")
    burst = [
        SignedCall(
            "Encrypt" if index % 2 == 0 else "DescribeKey",
            user,
            {"KeyId": alias, "Plaintext": plaintext, "EncryptionContext": ENCRYPTION_CONTEXT}
            if index % 2 == 0
            else {"KeyId": alias},
        )
        for index, (alias, user) in enumerate(zip(aliases, users, strict=True))
    ]
    warm = {"KeyId": warm_key_id, "Plaintext": plaintext, "EncryptionContext": ENCRYPTION_CONTEXT}
    # one call of each kind through the same signer: a broken setup fails here, not in wrk
    rpc_call(url, root, "Encrypt", **warm)
    for call in burst[:2]:
        rpc_call(url, call.creds, call.action, **call.extra)
    return ColdFixture(instance_id, warm_key_id, warm, burst)


@contextlib.contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one server (SQLAlchemy URL), dropped afterwards."""
    name = f"openkms_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"  created PostgreSQL database {name}")
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"  dropped PostgreSQL database {name}")


# ----------------------------------------------------------------------------------------------------
# result


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class ColdResult:
    backend: str
    targets: int
    cache_ttl: float
    warm_connections: int
    burst_connections: int
    setup_s: float = 0.0
    alone: list[RunResult] = field(default_factory=list)  # (a): warm Encrypt alone
    during: list[RunResult] = field(default_factory=list)  # (b): the same, under the burst
    burst: list[RunResult] = field(default_factory=list)  # (b): the burst itself
    order: list[str] = field(default_factory=list)  # "alone" / "burst", in the order measured
    warmup_rps: dict[str, float] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def stat(runs: Sequence[RunResult], name: str) -> float:
        return _median([getattr(run, name) for run in runs])

    @staticmethod
    def worst(runs: Sequence[RunResult], name: str) -> float:
        return max((getattr(run, name) for run in runs), default=0.0)

    @property
    def p99_ratio(self) -> float:
        alone = self.stat(self.alone, "p99_ms")
        return self.stat(self.during, "p99_ms") / alone if alone else math.nan

    @property
    def pair_p99_ratios(self) -> list[float]:
        return [
            round(b.p99_ms / a.p99_ms, 3) if a.p99_ms else math.nan
            for a, b in zip(self.alone, self.during, strict=False)
        ]

    @property
    def revisit_s(self) -> float:
        """Seconds before the fastest burst run named a target again: above the cache TTL, every
        burst request found its key, alias and credential expired (or never cached)."""
        fastest = self.worst(self.burst, "rps")
        return self.targets / fastest if fastest else math.inf

    @property
    def all_runs(self) -> list[RunResult]:
        return [*self.alone, *self.during, *self.burst]

    @property
    def valid(self) -> bool:
        return bool(self.alone) and bool(self.during) and all(run.valid for run in self.all_runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.all_runs)

    def problems(self) -> list[str]:
        out: list[str] = []
        for name, runs in (("alone", self.alone), ("during", self.during), ("burst", self.burst)):
            for index, run in enumerate(runs, 1):
                if run.non200:
                    out.append(f"{name} run {index}: {run.non200} non-200 responses {run.statuses}")
                if run.socket_errors:
                    out.append(f"{name} run {index}: socket errors {run.socket_errors}")
                if run.exhausted:
                    out.append(f"{name} run {index}: ran out of pre-signed requests ({run.loaded} loaded)")
        return out

    def noisy_runs(self) -> list[str]:
        """Runs during which something besides the server and wrk kept the CPUs busy."""
        return [
            f"{name} {index}"
            for name, runs in (("alone", self.alone), ("during", self.during))
            for index, run in enumerate(runs, 1)
            if run.usage and (run.usage.other_cores > NOISE_CORES or run.usage.steal > 0.02)
        ]

    def side(self, runs: Sequence[RunResult]) -> dict[str, Any]:
        return {
            "rps": round(self.stat(runs, "rps"), 1),
            "p50_ms": round(self.stat(runs, "p50_ms"), 3),
            "p99_ms": round(self.stat(runs, "p99_ms"), 3),
            "worst_p99_ms": round(self.worst(runs, "p99_ms"), 3),
            "worst_max_ms": round(self.worst(runs, "max_ms"), 3),
            "runs": [asdict(run) | {"valid": run.valid} for run in runs],
        }

    def to_json(self) -> dict[str, Any]:
        alone_p50 = self.stat(self.alone, "p50_ms")
        alone_rps = self.stat(self.alone, "rps")
        alone_worst = self.worst(self.alone, "p99_ms")
        return {
            "backend": self.backend,
            "targets": self.targets,
            "cache_ttl_s": self.cache_ttl,
            "warm_connections": self.warm_connections,
            "burst_connections": self.burst_connections,
            "setup_s": round(self.setup_s, 1),
            "order": self.order,
            "warmup_rps": self.warmup_rps,
            "p99_ratio": round(self.p99_ratio, 3),
            "pair_p99_ratios": self.pair_p99_ratios,
            "p50_ratio": round(self.stat(self.during, "p50_ms") / alone_p50, 3) if alone_p50 else None,
            "worst_p99_ratio": round(self.worst(self.during, "p99_ms") / alone_worst, 3)
            if alone_worst
            else None,
            "warm_rps_ratio": round(self.stat(self.during, "rps") / alone_rps, 3) if alone_rps else None,
            "revisit_s": round(self.revisit_s, 2),
            "every_burst_request_cold": self.revisit_s > self.cache_ttl,
            "valid": self.valid,
            "errors": self.errors,
            "problems": self.problems(),
            "noisy_runs": self.noisy_runs(),
            "alone": self.side(self.alone),
            "during": self.side(self.during),
            "burst": {
                "rps": round(self.stat(self.burst, "rps"), 1),
                "p50_ms": round(self.stat(self.burst, "p50_ms"), 3),
                "p99_ms": round(self.stat(self.burst, "p99_ms"), 3),
                "runs": [asdict(run) | {"valid": run.valid} for run in self.burst],
            },
            "findings": self.findings,
        }


# ----------------------------------------------------------------------------------------------------
# measurement


class _Measurement:
    """The runs of one backend against one running server."""

    def __init__(
        self,
        plan: ColdPlan,
        backend: str,
        server: ManagedServer,
        fixture: ColdFixture,
        root: Credentials,
        work: Path,
    ) -> None:
        self.plan = plan
        self.server = server
        self.fixture = fixture
        self.root = root
        self.work = work
        self.cursor = 0  # the next burst file starts at the target after the last one sent
        self.database = "postgres" if backend == "postgres" else None  # its processes' CPU is counted

    @property
    def cap(self) -> float:
        return self.plan.max_rate * HEADROOM

    def _count(self, rate: float, seconds: float) -> int:
        return math.ceil(min(self.cap, max(2.0 * rate * HEADROOM, 2000.0)) * seconds) + 1000

    def _sign_warm(self, count: int) -> Path:
        path = self.work / "requests-cold-warm.txt"
        write_request_file(path, "Encrypt", self.root, self.fixture.warm, count)
        return path

    def _sign_burst(self, count: int) -> Path:
        calls = self.fixture.burst
        path = self.work / "requests-cold-burst.txt"
        started = time.monotonic()
        write_varied_request_file(path, [calls[(self.cursor + i) % len(calls)] for i in range(count)])
        log(f"  signed {count:,} burst requests in {time.monotonic() - started:.1f} s")
        return path

    def warm_alone(self, count: int, seconds: float) -> RunResult:
        path = self._sign_warm(count)
        try:
            return run_wrk(
                self.server.url, path, count, self.plan.warm_connections, seconds, self.plan.threads,
                UsageMeter(self.server.session, database=self.database),
            )  # fmt: skip
        finally:
            path.unlink(missing_ok=True)

    def burst_alone(self, count: int, seconds: float) -> RunResult:
        path = self._sign_burst(count)
        try:
            background = BackgroundWrk(
                self.server.url, path, count, self.plan.burst_connections, seconds, self.plan.threads
            )
            try:
                result = background.result()
            finally:
                background.stop()
        finally:
            path.unlink(missing_ok=True)
        self.cursor += result.requests
        return result

    def warm_during_burst(self, warm_count: int, burst_count: int) -> tuple[RunResult, RunResult]:
        plan = self.plan
        burst_path = self._sign_burst(burst_count)
        warm_path = self._sign_warm(warm_count)
        try:
            background = BackgroundWrk(
                self.server.url, burst_path, burst_count, plan.burst_connections,
                plan.duration + 2 * LEAD, plan.threads,
            )  # fmt: skip
            try:
                time.sleep(LEAD)
                warm = run_wrk(
                    self.server.url, warm_path, warm_count, plan.warm_connections, plan.duration,
                    plan.threads,
                    UsageMeter(self.server.session, [background.session], database=self.database),
                )  # fmt: skip
                burst = background.result()
            finally:
                background.stop()
        finally:
            burst_path.unlink(missing_ok=True)
            warm_path.unlink(missing_ok=True)
        self.cursor += burst.requests
        return warm, burst


def _describe(run: RunResult) -> str:
    text = (
        f"{run.rps:,.0f} req/s p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms max {run.max_ms:.1f} ms "
        f"errors {run.errors}"
    )
    u = run.usage
    if u:
        text += f"; server cores {u.server_cores}, wrk {u.wrk_cores}, other {u.other_cores}"
        if u.database_cores:
            text += f", database {u.database_cores}"
        text += f", busy {u.box_busy:.0%}"
    return text


def measure_backend(plan: ColdPlan, backend: str, work: Path, root: Credentials) -> ColdResult:
    """Start a server on a fresh `backend` store, build the fixture, measure, stop, clean up."""
    result = ColdResult(backend, plan.targets, plan.cache_ttl, plan.warm_connections, plan.burst_connections)
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        env = dict(plan.server_env)
        if backend == "postgres":
            env["OPENKMS_DATABASE_URL"] = stack.enter_context(fresh_postgres(plan.postgres_admin_url))
        server = openkms_server(work, root, plan.workers, env)
        stack.callback(server.stop)
        server.start()
        log(f"cold burst on {backend}: creating {plan.targets:,} keys, aliases and RAM users")
        started = time.monotonic()
        fixture = make_cold_fixture(server.url, root, plan.targets)
        result.setup_s = time.monotonic() - started
        m = _Measurement(plan, backend, server, fixture, root, work)
        warm = m.warm_alone(math.ceil(m.cap * plan.warmup) + 100, plan.warmup)
        burst = m.burst_alone(math.ceil(BURST_WARMUP_RATE * plan.warmup) + 1000, plan.warmup)
        result.warmup_rps = {"warm": warm.rps, "burst": burst.rps}
        log(f"  warm-up: warm {_describe(warm)}")
        log(f"  warm-up: burst {_describe(burst)}")
        for run in (warm, burst):
            if not run.valid:
                loud(f"cold burst on {backend}: warm-up problems: {run.statuses} {run.socket_errors}")
        warm_count = m._count(warm.rps, plan.duration)
        burst_count = m._count(burst.rps, plan.duration + 2 * LEAD)
        for index in range(plan.runs):
            for case in ("alone", "burst") if index % 2 == 0 else ("burst", "alone"):
                result.order.append(case)
                if case == "alone":
                    run = m.warm_alone(warm_count, plan.duration)
                    result.alone.append(run)
                    log(f"  run {index + 1}/{plan.runs} {backend} warm alone: {_describe(run)}")
                else:
                    during, burst = m.warm_during_burst(warm_count, burst_count)
                    result.during.append(during)
                    result.burst.append(burst)
                    log(f"  run {index + 1}/{plan.runs} {backend} warm during burst: {_describe(during)}")
                    log(f"  run {index + 1}/{plan.runs} {backend} the burst itself: {_describe(burst)}")
        server.stop()
        result.findings = {
            "audit": audit_outcomes(work / "openkms-data"),
            "server_log": server_log_issues(server),
            "fixture": {"instance_id": fixture.instance_id, "warm_key_id": fixture.warm_key_id},
        }
    if not result.valid:
        loud(f"cold burst on {backend} INVALID: {'; '.join(result.problems())}")
    log(
        f"cold burst on {backend}: warm p99 during / alone {result.p99_ratio:.2f}; "
        f"targets come round every {result.revisit_s:.1f} s (cache TTL {plan.cache_ttl:g} s)"
    )
    return result


def run_scenario(plan: ColdPlan, work: Path, root: Credentials) -> list[ColdResult]:
    return [measure_backend(plan, backend, work / f"cold-{backend}", root) for backend in plan.backends]


# ----------------------------------------------------------------------------------------------------
# reporting


def markdown_table(results: Sequence[ColdResult]) -> str:
    lines = [
        "| database | warm Encrypt | req/s | p50 ms | p99 ms | worst-run p99 ms | max ms | errors "
        "| runs (p99 ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for case, runs in (("alone", result.alone), ("during burst", result.during)):
            errors = sum(run.errors for run in runs) + (
                sum(run.errors for run in result.burst) if case == "during burst" else 0
            )
            noted = str(errors) if result.valid else f"**{errors} INVALID**"
            noisy = [name for name in result.noisy_runs() if name.startswith(case.split()[0])]
            if noisy:
                noted += " (noisy: run " + ", ".join(name.split()[1] for name in noisy) + ")"
            lines.append(
                f"| {result.backend} | {case} | {ColdResult.stat(runs, 'rps'):,.0f} | "
                f"{ColdResult.stat(runs, 'p50_ms'):.2f} | {ColdResult.stat(runs, 'p99_ms'):.2f} | "
                f"{ColdResult.worst(runs, 'p99_ms'):.2f} | {ColdResult.worst(runs, 'max_ms'):.1f} | "
                f"{noted} | " + " / ".join(f"{run.p99_ms:.2f}" for run in runs) + " |"
            )
    return "\n".join(lines)


def summary_lines(results: Sequence[ColdResult]) -> list[str]:
    lines = []
    for result in results:
        data = result.to_json()
        cold = (
            f"each burst request named a target not used in the previous {data['revisit_s']:.1f} s "
            f"(cache TTL {result.cache_ttl:g} s)"
            if data["every_burst_request_cold"]
            else f"**targets came round every {data['revisit_s']:.1f} s, within the cache TTL "
            f"({result.cache_ttl:g} s): not every burst request was cold**"
        )
        lines.append(
            f"- **Cold burst on {result.backend}: warm Encrypt p99 during / without the burst "
            f"{data['p99_ratio']:.2f}** ({data['during']['p99_ms']:.2f} / {data['alone']['p99_ms']:.2f} ms; "
            f"per pair {', '.join(f'{r:.2f}' for r in data['pair_p99_ratios'])}); "
            f"p50 {data['p50_ratio']:.2f}, "
            f"worst-run p99 {data['worst_p99_ratio']:.2f}, warm req/s {data['warm_rps_ratio']:.2f}. "
            f"Burst: {data['burst']['rps']:,.0f} req/s at {result.burst_connections} connections "
            f"(p99 {data['burst']['p99_ms']:.1f} ms), {cold}" + ("" if result.valid else " (**INVALID**)")
        )
    return lines


def markdown_block(results: Sequence[ColdResult], duration: float, runs: int) -> list[str]:
    if not results:
        return []
    first = results[0]
    return [
        f"Cold-cache burst: warm Encrypt (one cached key, root's credential) at {first.warm_connections} "
        f"connections for {duration:g} s, alone and while {first.burst_connections} connections send "
        f"Encrypt/DescribeKey through {first.targets:,} keys by alias, each signed by its own RAM user's "
        f"access key; {runs} pair(s) of runs in alternating order, median shown.",
        "",
        markdown_table(results),
        "",
        *summary_lines(results),
    ]
