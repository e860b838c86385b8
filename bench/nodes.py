"""The nodes scenario of `make bench`: Encrypt through the full path on two nodes sharing one PostgreSQL
database, driven together, against one node of the same cluster alone, in the same run.

Two `openkms serve` processes with separate data dirs, the same root key file (copied, mode 0600) and
the same database URL: the first makes the store, the second joins it. One node alone: one wrk at C
connections on node A. Two nodes: one wrk at C/2 connections on each node at once (same total), their
req/s summed. Each node has `--workers` workers, so the two-node runs have twice the server processes on
the same cores: on one box the ratio shows what running as several nodes costs (shared replay cache,
change counter, leases: whatever the nodes do to stay coherent), not what more machines would add.
Runs alternate (one node, two nodes, ...) so the box's drift falls on both sides.

A third node of the same store, with `replay_scope = "node"` (its replay cache only in its own
memory: unsafe for several nodes, the single-host fast path), is driven alone in the same rotation:
one node / that node is what the shared replay cache costs a request.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cold_burst import fresh_postgres
from bench.harness import (
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
from bench.presign import Credentials, rpc_call, write_request_file

if TYPE_CHECKING:
    from bench.run import Plan

HEADROOM = 1.3
ROOT_KEY_FILE = "root.key"


@dataclass
class NodesResult:
    connections: int
    workers: int
    one: list[RunResult] = field(default_factory=list)
    two: list[tuple[RunResult, RunResult]] = field(default_factory=list)  # (node A, node B) of each run
    local: list[RunResult] = field(default_factory=list)  # one node whose replay cache is its own only
    findings: dict[str, Any] = field(default_factory=dict)

    @property
    def one_rps(self) -> float:
        return float(statistics.median(r.rps for r in self.one)) if self.one else 0.0

    @property
    def two_rps(self) -> float:
        return float(statistics.median(a.rps + b.rps for a, b in self.two)) if self.two else 0.0

    @property
    def local_rps(self) -> float:
        return float(statistics.median(r.rps for r in self.local)) if self.local else 0.0

    @property
    def local_p99(self) -> float:
        return float(statistics.median(r.p99_ms for r in self.local)) if self.local else 0.0

    @property
    def one_p99(self) -> float:
        return float(statistics.median(r.p99_ms for r in self.one)) if self.one else 0.0

    @property
    def two_p99(self) -> float:
        """Median over the runs of the slower node's p99."""
        return float(statistics.median(max(a.p99_ms, b.p99_ms) for a, b in self.two)) if self.two else 0.0

    @property
    def valid(self) -> bool:
        return (
            bool(self.one and self.two)
            and all(r.valid for r in self.one)
            and all(a.valid and b.valid for a, b in self.two)
            and all(r.valid for r in self.local)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "workers_per_node": self.workers,
            "one_node_rps": round(self.one_rps, 1),
            "two_nodes_rps": round(self.two_rps, 1),
            "ratio": round(self.two_rps / self.one_rps, 3) if self.one_rps else None,
            "one_node_p99_ms": self.one_p99,
            "node_replay_rps": round(self.local_rps, 1),
            "node_replay_p99_ms": self.local_p99,
            "shared_replay_ratio": round(self.one_rps / self.local_rps, 3) if self.local_rps else None,
            "two_nodes_p99_ms": self.two_p99,
            "valid": self.valid,
            "one_node_runs": [
                {
                    "rps": r.rps,
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "errors": r.errors,
                    "statuses": r.statuses,
                }
                for r in self.one
            ],
            "two_nodes_runs": [
                [
                    {
                        "rps": r.rps,
                        "p50_ms": r.p50_ms,
                        "p99_ms": r.p99_ms,
                        "errors": r.errors,
                        "statuses": r.statuses,
                    }
                    for r in pair
                ]
                for pair in self.two
            ],
            "findings": self.findings,
        }


def start_node(
    work: Path,
    creds: Credentials,
    workers: int,
    database_url: str,
    root_key: Path | None,
    env: dict[str, str] | None = None,
) -> ManagedServer:
    """A node on `database_url`; with `root_key`, that file is its root key (the cluster's)."""
    work.mkdir(parents=True, exist_ok=True)
    if root_key is not None:
        data_dir = work / "openkms-data"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(root_key, data_dir / ROOT_KEY_FILE)
        (data_dir / ROOT_KEY_FILE).chmod(0o600)
    return openkms_server(work, creds, workers, {"OPENKMS_DATABASE_URL": database_url, **(env or {})})


class _Driver:
    def __init__(self, plan: Plan, work: Path, creds: Credentials, params: dict[str, str]) -> None:
        self.plan, self.work, self.creds, self.params = plan, work, creds, params

    def _file(self, name: str, count: int) -> Path:
        path = self.work / f"requests-nodes-{name}.txt"
        write_request_file(path, "Encrypt", self.creds, self.params, count)
        return path

    def one(self, node: ManagedServer, conns: int, seconds: float, count: int) -> RunResult:
        path = self._file("a", count)
        try:
            return run_wrk(node.url, path, count, conns, seconds, self.plan.threads, UsageMeter(node.session))
        finally:
            path.unlink(missing_ok=True)

    def two(
        self, a: ManagedServer, b: ManagedServer, conns: int, seconds: float, count: int
    ) -> tuple[RunResult, RunResult]:
        half = max(1, conns // 2)
        path_a, path_b = self._file("a", count), self._file("b", count)
        try:
            background = BackgroundWrk(b.url, path_b, count, half, seconds, self.plan.threads)
            try:
                first = run_wrk(a.url, path_a, count, half, seconds, self.plan.threads, UsageMeter(a.session))
                return first, background.result()
            finally:
                background.stop()
        finally:
            path_a.unlink(missing_ok=True)
            path_b.unlink(missing_ok=True)


def _describe(run: RunResult) -> str:
    return f"{run.rps:,.0f} req/s p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms errors {run.errors}"


def run_scenario(
    plan: Plan, work: Path, creds: Credentials, postgres_admin_url: str, conns: int
) -> NodesResult:
    from bench.run import ENCRYPTION_CONTEXT, make_fixture

    result = NodesResult(conns, plan.workers)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_postgres(postgres_admin_url))
        a = start_node(work / "node-a", creds, plan.workers, url, None)
        stack.callback(a.stop)
        a.start()
        b = start_node(
            work / "node-b", creds, plan.workers, url, work / "node-a" / "openkms-data" / ROOT_KEY_FILE
        )
        b.name = "openkms node b"
        stack.callback(b.stop)
        b.start()
        c = start_node(
            work / "node-c",
            creds,
            plan.workers,
            url,
            work / "node-a" / "openkms-data" / ROOT_KEY_FILE,
            {"OPENKMS_REPLAY_SCOPE": "node"},
        )
        c.name = "openkms node c (replay_scope node)"
        stack.callback(c.stop)
        c.start()
        fixture = make_fixture(a.url, creds)
        params = fixture.params("Encrypt")
        answer = rpc_call(
            b.url, creds, "Decrypt", CiphertextBlob=fixture.blob, EncryptionContext=ENCRYPTION_CONTEXT
        )
        if answer.get("Plaintext") != fixture.plaintext:
            raise RuntimeError("node b did not decrypt what node a encrypted")
        driver = _Driver(plan, work, creds, params)
        cap = plan.max_rate * HEADROOM
        warm_count = math.ceil(cap * plan.warmup) + 100
        warm_one = driver.one(a, conns, plan.warmup, warm_count)
        warm_two = driver.two(a, b, conns, plan.warmup, warm_count)
        log(
            f"  warm-up one node: {_describe(warm_one)}; "
            f"two nodes: {_describe(warm_two[0])} + {_describe(warm_two[1])}"
        )
        rate = max(warm_one.rps, warm_two[0].rps + warm_two[1].rps)
        count = math.ceil(min(cap, max(2.0 * rate * HEADROOM, 2000.0)) * plan.duration) + 1000
        for index in range(plan.runs):
            order = ("one", "two", "local") if index % 2 == 0 else ("local", "two", "one")
            for case in order:
                if case == "local":
                    run = driver.one(c, conns, plan.duration, count)
                    result.local.append(run)
                    log(
                        f"  run {index + 1}/{plan.runs} one node, replay_scope node, c={conns}: "
                        f"{_describe(run)}"
                    )
                elif case == "one":
                    run = driver.one(a, conns, plan.duration, count)
                    result.one.append(run)
                    log(f"  run {index + 1}/{plan.runs} one node, c={conns}: {_describe(run)}")
                else:
                    pair = driver.two(a, b, conns, plan.duration, count)
                    result.two.append(pair)
                    log(f"  run {index + 1}/{plan.runs} two nodes, c={conns // 2} each: "
                        f"{_describe(pair[0])} + {_describe(pair[1])}")  # fmt: skip
        a.stop()
        b.stop()
        c.stop()
        result.findings = {
            "node_a": {
                "audit": audit_outcomes(work / "node-a" / "openkms-data"),
                "server_log": server_log_issues(a),
            },
            "node_b": {
                "audit": audit_outcomes(work / "node-b" / "openkms-data"),
                "server_log": server_log_issues(b),
            },
        }
    if not result.valid:
        loud("nodes: a run had errors (see latest.json)")
    return result


def summary_lines(result: NodesResult) -> list[str]:
    ratio = result.two_rps / result.one_rps if result.one_rps else 0.0
    return [
        f"Two nodes on one PostgreSQL database (`--only nodes`), Encrypt full path, {result.connections} "
        f"connections in all, {result.workers} workers per node, runs alternated:",
        "",
        f"- **two nodes / one node: {ratio:.2f}** ({result.two_rps:,.0f} / {result.one_rps:,.0f} req/s); "
        f"p99 {result.two_p99:.2f} ms (slower node) against {result.one_p99:.2f} ms"
        + ("" if result.valid else " (**INVALID: errors**)"),
        f"- runs, one node: {' / '.join(f'{r.rps:,.0f}' for r in result.one)}; two nodes: "
        + " / ".join(f"{a.rps:,.0f} + {b.rps:,.0f}" for a, b in result.two),
        f"- **the shared replay cache: one node / one node with replay_scope node: "
        f"{result.one_rps / result.local_rps if result.local_rps else 0.0:.2f}** "
        f"({result.one_rps:,.0f} / {result.local_rps:,.0f} req/s; p99 {result.one_p99:.2f} against "
        f"{result.local_p99:.2f} ms)",
    ]


def summary_for(results: Sequence[NodesResult]) -> list[str]:
    return [line for result in results for line in summary_lines(result)]
