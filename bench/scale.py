"""The scale scenario of `make bench`: DescribeKey and ListKeys latency with 1 k, 100 k and 1 M keys in
the account's store, on PostgreSQL and SQLite. The figures should stay flat: no query may scan a
number of rows that grows with the key count.

How: a server on a fresh store, one template key made through the API, then the store is filled up to
each size by inserting copies of the template's `keys` and `key_versions` rows straight into the
database in bulk (SQLAlchemy Core on the repository's own tables: 1 M keys through the API would take
hours). Each copy has its own key id, version id and creation time; it is a key the server describes
and lists like any other (its version row carries the template's wrapped material, which is bound to
the template's ids, so cryptographic calls on a copy are not part of this bench).

At each size, sequential requests on one keep-alive connection (latency, not throughput), each signed
just before its run: DescribeKey of a random key (a different key each request: it misses the key
cache and reads the database), ListKeys' first page and its last page (PageSize 100, so the last
page's offset is the key count). `runs` runs of each case, interleaved (run 1 of every case, then run
2, ...); each run is up to `requests` requests or `seconds` seconds, whichever ends first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import math
import random
import statistics
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select

from bench.cold_burst import fresh_postgres
from bench.harness import ManagedServer, log, openkms_server, server_log_issues
from bench.presign import Credentials, form_body, rpc_call, signed_request_params
from openkms.repository.key_counts import change_key_count
from openkms.repository.tables import key_versions, keys

BACKENDS = ("postgres", "sqlite")
SIZES = (1_000, 100_000, 1_000_000)
PAGE_SIZE = 100
CASES = ("DescribeKey", "ListKeys first page", "ListKeys last page")
FILL_BATCH = 10_000  # rows per INSERT statement batch (one transaction each)
FLAT_LIMIT = 2.0  # a case whose median grows more than this from the smallest to the largest size is flagged


@dataclass(frozen=True)
class ScalePlan:
    backends: tuple[str, ...]
    sizes: tuple[int, ...]
    runs: int
    requests: int  # per run, at most
    seconds: float  # per run, at most
    workers: int
    postgres_admin_url: str
    server_env: Mapping[str, str]


# ----------------------------------------------------------------------------------------------------
# pure helpers (unit-tested)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction in (0, 1]) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def last_page(total: int, page_size: int = PAGE_SIZE) -> int:
    """The number of the last page that holds keys (1 for an empty list)."""
    return max(1, math.ceil(total / page_size))


def filler_key_id(template_key_id: str, index: int) -> str:
    """A filler copy's key id, shaped like the template's: an instance key `key-<region code><21>`
    or a default key (a UUID). Distinct for every index, recognisable as the bench's."""
    if template_key_id.startswith("key-") and len(template_key_id) == 28:
        return f"{template_key_id[:7]}bench{index:016d}"
    return str(uuid.UUID(int=(0xBE7C << 112) | index))


@dataclass
class Case:
    """One measured case at one size: the latencies (ms) of each run."""

    name: str
    runs: list[list[float]] = field(default_factory=list)
    errors: int = 0

    @property
    def p50_ms(self) -> float:
        return float(statistics.median(percentile(run, 0.5) for run in self.runs)) if self.runs else 0.0

    @property
    def p99_ms(self) -> float:
        return float(statistics.median(percentile(run, 0.99) for run in self.runs)) if self.runs else 0.0

    @property
    def worst_p99_ms(self) -> float:
        return max((percentile(run, 0.99) for run in self.runs), default=0.0)

    @property
    def requests(self) -> int:
        return sum(len(run) for run in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "worst_p99_ms": round(self.worst_p99_ms, 3),
            "requests": self.requests,
            "errors": self.errors,
            "runs": [
                {
                    "n": len(run),
                    "p50_ms": round(percentile(run, 0.5), 3),
                    "p99_ms": round(percentile(run, 0.99), 3),
                }
                for run in self.runs
            ],
        }


@dataclass
class SizeResult:
    size: int
    fill_s: float
    cases: dict[str, Case]


@dataclass
class ScaleResult:
    backend: str
    sizes: list[SizeResult] = field(default_factory=list)
    findings: dict[str, Any] = field(default_factory=dict)

    def growth(self, case: str) -> float:
        """Median latency at the largest size / at the smallest."""
        if len(self.sizes) < 2:
            return 1.0
        first, last = self.sizes[0].cases[case].p50_ms, self.sizes[-1].cases[case].p50_ms
        return last / first if first else 0.0

    @property
    def valid(self) -> bool:
        return all(case.errors == 0 for size in self.sizes for case in size.cases.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sizes": [
                {
                    "keys": s.size,
                    "fill_s": round(s.fill_s, 1),
                    "cases": [c.to_json() for c in s.cases.values()],
                }
                for s in self.sizes
            ],
            "growth_p50": {case: round(self.growth(case), 2) for case in CASES},
            "findings": self.findings,
        }


# ----------------------------------------------------------------------------------------------------
# the store


@dataclass(frozen=True)
class Template:
    key_id: str
    account_id: str
    region_id: str


def _engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def count_keys(engine: Engine, template: Template) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                select(func.count())
                .select_from(keys)
                .where(keys.c.account_id == template.account_id, keys.c.region_id == template.region_id)
            ).scalar_one()
        )


def fill(engine: Engine, template: Template, target: int, start_index: int) -> int:
    """Insert copies of the template key (and its version) until the account's region holds `target`
    keys; returns the next filler index. Each batch is one transaction."""
    with engine.connect() as c:
        key_row = dict(c.execute(select(keys).where(keys.c.key_id == template.key_id)).mappings().one())
        version_row = dict(
            c.execute(select(key_versions).where(key_versions.c.key_id == template.key_id)).mappings().one()
        )
    have = count_keys(engine, template)
    base_time: dt.datetime = key_row["created_at"]
    index = start_index
    while have < target:
        batch = min(FILL_BATCH, target - have)
        key_rows, version_rows = [], []
        for _ in range(batch):
            index += 1
            key_id = filler_key_id(template.key_id, index)
            version_id = str(uuid.uuid4())
            # before the template, older copies first: the template stays on the last page
            created = base_time - dt.timedelta(days=400) + dt.timedelta(milliseconds=index)
            key_rows.append(
                key_row | {"key_id": key_id, "primary_version_id": version_id, "created_at": created}
            )
            version_rows.append(
                version_row | {"key_id": key_id, "version_id": version_id, "created_at": created}
            )
        with engine.begin() as c:
            c.execute(insert(keys), key_rows)
            c.execute(insert(key_versions), version_rows)
            change_key_count(c, template.account_id, template.region_id, batch)  # as KeyRepository.add
        have += batch
    return index


# ----------------------------------------------------------------------------------------------------
# measuring


class Client:
    """Signed RPC calls on one keep-alive connection, timed from just before sending to the full answer."""

    def __init__(self, url: str, creds: Credentials) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self._creds = creds

    def close(self) -> None:
        self._conn.close()

    def timed(self, bodies: Sequence[bytes], seconds: float) -> tuple[list[float], int]:
        """Send the bodies in order until they or `seconds` run out: latencies (ms), errors."""
        latencies: list[float] = []
        errors = 0
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        deadline = time.monotonic() + seconds
        for body in bodies:
            started = time.perf_counter()
            self._conn.request("POST", "/", body=body, headers=headers)
            answer = self._conn.getresponse()
            answer.read()
            latencies.append((time.perf_counter() - started) * 1000)
            errors += answer.status != 200
            if time.monotonic() > deadline:
                break
        return latencies, errors

    def bodies(self, action: str, params: Sequence[Mapping[str, str]]) -> list[bytes]:
        return [form_body(signed_request_params(action, self._creds, p)).encode() for p in params]


def _case_params(
    name: str, total: int, key_ids: Sequence[str], count: int
) -> tuple[str, list[dict[str, str]]]:
    if name == "DescribeKey":
        return "DescribeKey", [
            {"KeyId": key_id} for key_id in random.sample(key_ids, min(count, len(key_ids)))
        ]
    page = 1 if name == "ListKeys first page" else last_page(total)
    return "ListKeys", [{"PageNumber": str(page), "PageSize": str(PAGE_SIZE)}] * count


def _sample_key_ids(engine: Engine, template: Template, count: int) -> list[str]:
    """`count` random key ids of the account (the database picks them: no full list in memory)."""
    order = func.random()
    with engine.connect() as c:
        rows = c.execute(
            select(keys.c.key_id)
            .where(keys.c.account_id == template.account_id, keys.c.region_id == template.region_id)
            .order_by(order)
            .limit(count)
        )
        return [row.key_id for row in rows]


def measure_size(
    plan: ScalePlan, server: ManagedServer, creds: Credentials, engine: Engine, template: Template, total: int
) -> dict[str, Case]:
    key_ids = _sample_key_ids(engine, template, plan.requests * plan.runs)
    check = rpc_call(server.url, creds, "ListKeys", PageNumber=str(last_page(total)), PageSize=str(PAGE_SIZE))
    if int(check["TotalCount"]) != total or not check["Keys"]["Key"]:
        raise RuntimeError(f"ListKeys says {check['TotalCount']} keys, the store holds {total}")
    cases = {name: Case(name) for name in CASES}
    client = Client(server.url, creds)
    try:
        for name in CASES:  # warm-up: connections, prepared statements, the first page's blocks
            action, params = _case_params(name, total, key_ids, 5)
            client.timed(client.bodies(action, params), plan.seconds)
        for run in range(plan.runs):
            for name, case in cases.items():
                sample = key_ids[run * plan.requests : (run + 1) * plan.requests]
                action, params = _case_params(name, total, sample, plan.requests)
                latencies, errors = client.timed(client.bodies(action, params), plan.seconds)
                case.runs.append(latencies)
                case.errors += errors
                log(
                    f"  {total:,} keys, run {run + 1}/{plan.runs} {name}: {len(latencies)} requests, "
                    f"p50 {percentile(latencies, 0.5):.2f} ms p99 {percentile(latencies, 0.99):.2f} ms"
                    + (f", {errors} ERRORS" if errors else "")
                )
    finally:
        client.close()
    return cases


@contextlib.contextmanager
def _store(plan: ScalePlan, backend: str, stack: contextlib.ExitStack) -> Iterator[dict[str, str]]:
    env = dict(plan.server_env)
    if backend == "postgres":
        env["OPENKMS_DATABASE_URL"] = stack.enter_context(fresh_postgres(plan.postgres_admin_url))
    yield env


def measure_backend(plan: ScalePlan, backend: str, work: Path, creds: Credentials) -> ScaleResult:
    result = ScaleResult(backend)
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(_store(plan, backend, stack))
        server = openkms_server(work, creds, plan.workers, env)
        stack.callback(server.stop)
        server.start()
        instance = rpc_call(server.url, creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]
        key_id = str(
            rpc_call(server.url, creds, "CreateKey", DKMSInstanceId=str(instance["KmsInstanceId"]))[
                "KeyMetadata"
            ]["KeyId"]
        )
        url = (
            env.get("OPENKMS_DATABASE_URL") or f"sqlite:///{(work / 'openkms-data' / 'openkms.db').resolve()}"
        )
        engine = _engine(url)
        stack.callback(engine.dispose)
        with engine.connect() as c:
            row = c.execute(select(keys.c.account_id, keys.c.region_id).where(keys.c.key_id == key_id)).one()
        template = Template(key_id, row.account_id, row.region_id)
        index = 0
        for size in plan.sizes:
            started = time.monotonic()
            index = fill(engine, template, size, index)
            filled = time.monotonic() - started
            if backend == "postgres":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE keys")  # what autovacuum does after a bulk load
                    c.exec_driver_sql("VACUUM ANALYZE key_versions")
            else:
                with engine.begin() as c:
                    c.exec_driver_sql("ANALYZE")
            total = count_keys(engine, template)
            log(f"scale on {backend}: {total:,} keys in the account's store (filled in {filled:.0f} s)")
            result.sizes.append(
                SizeResult(total, filled, measure_size(plan, server, creds, engine, template, total))
            )
        server.stop()
        result.findings = {"server_log": server_log_issues(server)}
    return result


def run_scenario(plan: ScalePlan, work: Path, creds: Credentials) -> list[ScaleResult]:
    return [measure_backend(plan, backend, work / f"scale-{backend}", creds) for backend in plan.backends]


# ----------------------------------------------------------------------------------------------------
# reporting


def markdown_block(results: Sequence[ScaleResult], plan: Mapping[str, Any]) -> list[str]:
    if not results:
        return []
    lines = [
        f"Scale (`--only scale`): latency of sequential requests on one connection, {plan['runs']} runs per "
        f"case (up to {plan['requests']} requests or {plan['seconds']:g} s each), median of the runs' "
        "p50 and p99, and the worst run's p99; ms. DescribeKey of a random key (misses the cache); "
        f"ListKeys with PageSize {PAGE_SIZE}, first and last page.",
        "",
        "| database | keys | fill s | DescribeKey p50 / p99 / worst | ListKeys first p50 / p99 / worst "
        "| ListKeys last p50 / p99 / worst | errors |",
        "|---|---:|---:|---|---|---|---:|",
    ]
    for result in results:
        for size in result.sizes:
            cells = [f"{c.p50_ms:.2f} / {c.p99_ms:.2f} / {c.worst_p99_ms:.2f}" for c in size.cases.values()]
            errors = sum(c.errors for c in size.cases.values())
            lines.append(
                f"| {result.backend} | {size.size:,} | {size.fill_s:.0f} | {' | '.join(cells)} | "
                + (str(errors) if not errors else f"**{errors} INVALID**")
                + " |"
            )
    lines.append("")
    for result in results:
        growth = ", ".join(
            f"{case} x{result.growth(case):.2f}"
            + (" (**grows**)" if result.growth(case) > FLAT_LIMIT else "")
            for case in CASES
        )
        lines.append(f"- {result.backend}: p50 at the largest size / at the smallest: {growth}")
    return lines
