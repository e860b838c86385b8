"""`make bench`: throughput and latency of a live OpenKMS server, next to the bare stack's Encrypt ceiling.

What it does (details and caveats in bench/README.md):

1. starts `openkms serve --workers 2` on a free 127.0.0.1 port in a temporary data dir, with a known root
   access key; creates a key through the real API (ListKmsInstances, CreateKey) and one CiphertextBlob;
2. for Encrypt, Decrypt, GenerateDataKey and DescribeKey at 1, 8 and 32 connections: a short warm-up, then
   `--runs` measured wrk runs (`wrk -t1 -cC -dDs --latency -s bench/replay.lua`), each replaying a file of
   requests signed just before it, every request exactly once;
3. the same Encrypt file shape against bench/bare_app.py on the same stack (uvicorn + uvloop + httptools,
   2 workers): the ceiling. Both servers run side by side and each Encrypt row alternates their runs, so
   the box's speed drift falls on both sides of the ratio;
4. the cold-cache burst (bench/cold_burst.py): warm Encrypt p99 alone and while 32 connections send
   requests that miss the key, alias and credential caches, on PostgreSQL and SQLite;
5. in-process costs of the nonce store and the audit sink (bench/micro.py);
6. writes bench/results/latest.{md,json} and the README's performance block (or prints it).

`--only` picks among the scenarios: `steady` (steps 1-3), `cold-burst` (4) and `micro` (5).

Every server runs in its own session and is killed by process group on exit, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import cold_burst, instance_api, key_stores, micro, nodes, rsa, scale
from bench.harness import (
    BENCH_DIR,
    NOISE_CORES,
    REPO_DIR,
    ManagedServer,
    RunResult,
    UsageMeter,
    audit_outcomes,
    bare_server,
    log,
    loud,
    machine_facts,
    openkms_server,
    run_wrk,
    server_log_issues,
)
from bench.presign import Credentials, rpc_call, write_request_file
from openkms.service.replay import node_memory_dir

ACTIONS = ("Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey")
ENCRYPTION_CONTEXT = '{"app":"billing","purpose":"bench"}'
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
P99_GOAL_MS = 10.0
RATIO_TARGET = 0.6  # issue 16: Encrypt full path / bare ceiling at the top connection count, at least
P99_RATIO_TARGET = 1.5  # issue 16: Encrypt full-path p99 / bare p99 of the same run, at most
ABLATABLE = ("audit", "replay", "limits")  # what --ablate can take out (bench/ablation/sitecustomize.py)
SCENARIOS = ("steady", "cold-burst", "micro", "key-stores", "scale", "rsa", "nodes", "instance-api")
UNBALANCED_RETRIES = 3  # repeats of a run whose connections all went to fewer workers than started
BUSY_WORKER_CORES = 0.1  # a worker below this during a run got (almost) no connections
HEADROOM = 1.3  # requests signed per second of run = min(max_rate, 2 x warm-up rate) x HEADROOM


# ----------------------------------------------------------------------------------------------------
# one configuration: warm-up + runs


@dataclass
class Row:
    target: str
    action: str
    connections: int
    runs: list[RunResult] = field(default_factory=list)
    warmup_rps: float = 0.0
    # Runs repeated because the kernel handed every connection to fewer workers than were started
    # (see `Bench._run`): (run number, cores of each busy worker) of each discarded attempt.
    repeated_unbalanced: list[tuple[int, list[float]]] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(run, name) for run in self.runs))

    @property
    def rps(self) -> float:
        return self.median("rps")

    @property
    def p50_ms(self) -> float:
        return self.median("p50_ms")

    @property
    def p99_ms(self) -> float:
        return self.median("p99_ms")

    @property
    def worst_p99_ms(self) -> float:
        """The highest p99 of the runs: intermittent stalls hide in medians."""
        return max((run.p99_ms for run in self.runs), default=0.0)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def valid(self) -> bool:
        return bool(self.runs) and all(run.valid for run in self.runs)

    @property
    def spread(self) -> float:
        values = [run.rps for run in self.runs]
        return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0

    def problems(self) -> list[str]:
        out: list[str] = []
        for index, run in enumerate(self.runs, 1):
            if run.non200:
                out.append(f"run {index}: {run.non200} non-200 responses {run.statuses}")
            if run.socket_errors:
                out.append(f"run {index}: socket errors {run.socket_errors}")
            if run.exhausted:
                out.append(f"run {index}: ran out of pre-signed requests ({run.loaded} loaded)")
        return out

    def noisy_runs(self) -> list[int]:
        """Runs during which something besides the server and wrk kept the CPUs busy."""
        return [
            index
            for index, run in enumerate(self.runs, 1)
            if run.usage and (run.usage.other_cores > NOISE_CORES or run.usage.steal > 0.02)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "action": self.action,
            "connections": self.connections,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "valid": self.valid,
            "problems": self.problems(),
            "noisy_runs": self.noisy_runs(),
            "repeated_unbalanced": [
                {"run": run, "busy_worker_cores": cores} for run, cores in self.repeated_unbalanced
            ],
            "spread": round(self.spread, 3),
            "warmup_rps": round(self.warmup_rps, 1),
            "runs": [asdict(run) | {"valid": run.valid} for run in self.runs],
        }


@dataclass
class Plan:
    duration: float
    warmup: float
    runs: int
    connections: tuple[int, ...]
    threads: int
    max_rate: float
    workers: int


class Bench:
    def __init__(self, plan: Plan, work: Path, creds: Credentials) -> None:
        self.plan = plan
        self.work = work
        self.creds = creds
        self.rows: list[Row] = []

    def _sign(self, action: str, params: Mapping[str, str], count: int) -> tuple[Path, int]:
        path = self.work / f"requests-{action}.txt"
        started = time.monotonic()
        size = write_request_file(path, action, self.creds, params, count)
        log(
            f"  signed {count:,} {action} requests ({size / 1e6:.0f} MB) "
            f"in {time.monotonic() - started:.1f} s"
        )
        return path, count

    def _once(
        self,
        server: ManagedServer,
        action: str,
        params: Mapping[str, str],
        conns: int,
        seconds: float,
        n: int,
        raw: Callable[[], bytes] | None = None,
    ) -> RunResult:
        """One wrk run: `n` pre-signed RPC requests, each sent once; or, with `raw`, the one request it
        makes (signed now), sent again and again (the instance API, which has no nonce)."""
        if raw is not None:
            path, signed = self.work / f"request-{action}.http", n
            path.write_bytes(raw())
        else:
            path, signed = self._sign(action, params, n)
        try:
            return run_wrk(
                server.url, path, signed, conns, seconds, self.plan.threads, UsageMeter(server.session),
                raw=raw is not None,
            )  # fmt: skip
        finally:
            path.unlink(missing_ok=True)

    def config(
        self, server: ManagedServer, target: str, action: str, params: Mapping[str, str], conns: int
    ) -> Row:
        """Warm-up, then the measured runs of one target."""
        return self.interleaved([Target(server, target, params)], action, conns)[0]

    def interleaved(self, targets: Sequence[Target], action: str, conns: int) -> list[Row]:
        """The same row for several targets, their runs alternating (run 1 of each, then run 2, ...).

        The box's speed drifts (on the shared reference VM a CPU-bound loop ran 45% faster from one
        second to the next), so a ratio between two targets measured one after the other carries that
        drift; alternating runs spreads it over both.
        """
        plan = self.plan
        rows = [Row(target.name, action, conns) for target in targets]
        rates = [self._warm(target, action, conns, row) for target, row in zip(targets, rows, strict=True)]
        for index in range(plan.runs):
            for target, row, rate in zip(targets, rows, rates, strict=True):
                self._run(target, action, conns, row, rate, index)
        self.rows.extend(rows)
        return rows

    def _warm(self, target: Target, action: str, conns: int, row: Row) -> float:
        plan = self.plan
        cap = plan.max_rate * HEADROOM
        warm = self._once(
            target.server,
            action,
            target.params,
            conns,
            plan.warmup,
            math.ceil(cap * plan.warmup) + 100,
            target.raw,
        )
        row.warmup_rps = warm.rps
        log(
            f"  warm-up {target.name} {action} c={conns}: {warm.rps:,.0f} req/s"
            + ("" if warm.valid else " (INVALID)")
        )
        if not warm.valid:
            loud(f"{target.name} {action} c={conns}: warm-up problems: {warm.statuses} {warm.socket_errors}")
        return min(cap, max(2.0 * warm.rps * HEADROOM, 2000.0))

    def _run(self, target: Target, action: str, conns: int, row: Row, rate: float, index: int) -> None:
        plan = self.plan
        cap = plan.max_rate * HEADROOM
        name, server, params = target.name, target.server, target.params
        count = math.ceil(rate * plan.duration) + 1000
        for attempt in range(1 + UNBALANCED_RETRIES):
            result = self._once(server, action, params, conns, plan.duration, count, target.raw)
            if result.exhausted:
                loud(f"{name} {action} c={conns}: ran out of {count:,} requests; repeating with the cap")
                count = math.ceil(cap * plan.duration) + 1000
                result = self._once(server, action, params, conns, plan.duration, count, target.raw)
            busy = self._busy_workers(result, conns)
            if busy is None or attempt == UNBALANCED_RETRIES:
                break
            # Each worker has its own SO_REUSEPORT socket, so this should not happen; if every one of
            # wrk's connections still lands on one worker, the run measures one worker, not the
            # configuration asked for.
            row.repeated_unbalanced.append((index + 1, busy))
            log(
                f"  run {index + 1}/{plan.runs} {name} {action} c={conns}: {result.rps:,.0f} req/s on "
                f"{len(busy)} of {plan.workers} workers (cores {busy}); repeating"
            )
        row.runs.append(result)
        u = result.usage
        log(
            f"  run {index + 1}/{plan.runs} {name} {action} c={conns}: {result.rps:,.0f} req/s "
            f"p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms errors {result.errors}"
            + (
                f"; server cores {u.server_cores}, wrk {u.wrk_cores}, other {u.other_cores}, "
                f"busy {u.box_busy:.0%}"
                if u
                else ""
            )
        )
        if u and (u.other_cores > NOISE_CORES or u.steal > 0.02):
            loud(
                f"{name} {action} c={conns} run {index + 1}: the box is not quiet "
                f"({u.other_cores} cores busy outside the server and wrk, steal {u.steal:.1%})"
            )
        if not result.valid:
            loud(f"{name} {action} c={conns} run {index + 1} INVALID: {'; '.join(row.problems())}")

    def _busy_workers(self, result: RunResult, conns: int) -> list[float] | None:
        """The busy workers' cores if fewer workers than started did the work, else None. Judged
        only where every worker should get connections (at least 4 per worker)."""
        workers = self.plan.workers
        if result.usage is None or workers < 2 or conns < 4 * workers:
            return None
        busy = [cores for cores in result.usage.server_cores if cores >= BUSY_WORKER_CORES]
        return busy if len(busy) < workers else None


@dataclass(frozen=True)
class Target:
    """A running server under test and the parameters of its benchmarked request (`raw`: instead, a
    maker of one whole signed HTTP request that is sent again and again, for the instance API)."""

    server: ManagedServer
    name: str
    params: Mapping[str, str]
    raw: Callable[[], bytes] | None = None


# ----------------------------------------------------------------------------------------------------
# targets


@dataclass
class Fixture:
    instance_id: str
    key_id: str
    plaintext: str
    blob: str

    def params(self, action: str) -> dict[str, str]:
        if action == "Encrypt":
            return {
                "KeyId": self.key_id,
                "Plaintext": self.plaintext,
                "EncryptionContext": ENCRYPTION_CONTEXT,
            }
        if action == "Decrypt":
            return {"CiphertextBlob": self.blob, "EncryptionContext": ENCRYPTION_CONTEXT}
        if action in ("GenerateDataKey", "DescribeKey"):
            return {"KeyId": self.key_id}
        raise ValueError(action)


def make_fixture(url: str, creds: Credentials) -> Fixture:
    instances = rpc_call(url, creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"]
    if not instances:
        raise RuntimeError("ListKmsInstances returned no instance")
    instance_id = str(instances[0]["KmsInstanceId"])
    key_id = str(rpc_call(url, creds, "CreateKey", DKMSInstanceId=instance_id)["KeyMetadata"]["KeyId"])
    plaintext = base64.b64encode(os.urandom(48)).decode()  # 64 bytes of text
    assert len(plaintext.encode()) == 64
    answer = rpc_call(
        url, creds, "Encrypt", KeyId=key_id, Plaintext=plaintext, EncryptionContext=ENCRYPTION_CONTEXT
    )
    fixture = Fixture(instance_id, key_id, plaintext, str(answer["CiphertextBlob"]))
    # one call of each benchmarked action through the same signer: a broken setup fails here, not in wrk
    for action in ACTIONS:
        answer = rpc_call(url, creds, action, **fixture.params(action))
        if action == "Decrypt" and answer.get("Plaintext") != plaintext:
            raise RuntimeError("Decrypt did not give the plaintext back")
    log(f"instance {instance_id}, key {key_id}")
    return fixture


def start_openkms(
    bench: Bench, stack: contextlib.ExitStack, args: argparse.Namespace
) -> tuple[ManagedServer, Fixture]:
    server_env = dict(item.split("=", 1) for item in args.server_env)
    if args.ablate:
        # bench/ablation/sitecustomize.py patches the named parts out of the server and its workers.
        paths = (str(BENCH_DIR / "ablation"), str(REPO_DIR), os.environ.get("PYTHONPATH", ""))
        server_env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        server_env["BENCH_ABLATE"] = ",".join(args.ablate)
        loud(f"ABLATED server: {', '.join(args.ablate)} taken out (bench/ablation); not OpenKMS as shipped")
    server = openkms_server(bench.work, bench.creds, args.workers, server_env)
    stack.callback(server.stop)
    server.start()
    return server, make_fixture(server.url, bench.creds)


def start_bare(bench: Bench, stack: contextlib.ExitStack, args: argparse.Namespace) -> Target:
    server = bare_server(bench.work, bench.creds, args.workers)
    stack.callback(server.stop)
    server.start()
    params = {"KeyId": "bench-key", "Plaintext": base64.b64encode(os.urandom(48)).decode(),
              "EncryptionContext": ENCRYPTION_CONTEXT}  # fmt: skip
    rpc_call(server.url, bench.creds, "Encrypt", **params)
    return Target(server, "bare", params)


def bench_targets(
    bench: Bench,
    stack: contextlib.ExitStack,
    actions: Sequence[str],
    targets: Sequence[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every row asked for. With both targets, both servers run side by side (the idle one costs
    nothing) and each Encrypt row of the full server is measured interleaved with the bare app's."""
    findings: dict[str, Any] = {}
    openkms = start_openkms(bench, stack, args) if "openkms" in targets else None
    bare = start_bare(bench, stack, args) if "bare" in targets else None
    for conns in bench.plan.connections:
        for action in actions if openkms else ():
            assert openkms is not None
            server, fixture = openkms
            full = Target(server, "openkms", fixture.params(action))
            if action == "Encrypt" and bare is not None:
                bench.interleaved([full, bare], action, conns)
            else:
                bench.config(server, "openkms", action, full.params, conns)
        if bare is not None and (openkms is None or "Encrypt" not in actions):
            bench.config(bare.server, "bare", "Encrypt", bare.params, conns)
    if openkms is not None:
        server, fixture = openkms
        server.stop()
        findings["openkms"] = {
            "audit": audit_outcomes(bench.work / "openkms-data"),
            "server_log": server_log_issues(server),
            "server_env": dict(item.split("=", 1) for item in args.server_env),
            "fixture": {"instance_id": fixture.instance_id, "key_id": fixture.key_id},
        }
    if bare is not None:
        bare.server.stop()
        findings["bare"] = {"server_log": server_log_issues(bare.server)}
    return findings


# ----------------------------------------------------------------------------------------------------
# reporting


def _find(rows: Sequence[Row], target: str, action: str, conns: int) -> Row | None:
    for row in rows:
        if (row.target, row.action, row.connections) == (target, action, conns):
            return row
    return None


def summary(rows: Sequence[Row], connections: Sequence[int]) -> dict[str, Any]:
    top = max(connections)
    full = _find(rows, "openkms", "Encrypt", top)
    bare = _find(rows, "bare", "Encrypt", top)
    out: dict[str, Any] = {"connections": top}
    if full and bare and bare.rps:
        out["encrypt_over_bare"] = round(full.rps / bare.rps, 3)
        out["both_valid"] = full.valid and bare.valid
        if bare.p99_ms:
            out["encrypt_p99_over_bare_p99"] = round(full.p99_ms / bare.p99_ms, 3)
        out["target_met"] = {
            f"ratio >= {RATIO_TARGET}": out["encrypt_over_bare"] >= RATIO_TARGET,
            f"p99 <= {P99_RATIO_TARGET} x bare p99": out.get("encrypt_p99_over_bare_p99", math.inf)
            <= P99_RATIO_TARGET,
        }
    out["p99_below_10ms"] = {
        f"{row.target} {row.action}": row.p99_ms < P99_GOAL_MS for row in rows if row.connections == top
    }
    return out


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| target | action | connections | req/s | p50 ms | p99 ms | errors | runs (req/s) | server cores |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        errors = str(row.errors) if row.valid else f"**{row.errors} INVALID**"
        if row.noisy_runs():
            errors += " (noisy: run " + ", ".join(map(str, row.noisy_runs())) + ")"
        if row.repeated_unbalanced:
            errors += f" ({len(row.repeated_unbalanced)} one-worker run(s) repeated)"
        runs = " / ".join(_fmt_rate(run.rps) for run in row.runs)
        middle = sorted(row.runs, key=lambda run: run.rps)[len(row.runs) // 2]
        cores = " + ".join(f"{c:.2f}" for c in middle.usage.server_cores) if middle.usage else ""
        lines.append(
            f"| {row.target} | {row.action} | {row.connections} | {_fmt_rate(row.rps)} | "
            f"{row.p50_ms:.2f} | {row.p99_ms:.2f} | {errors} | {runs} | {cores} |"
        )
    return "\n".join(lines)


def summary_lines(rows: Sequence[Row], info: Mapping[str, Any]) -> list[str]:
    top = info["connections"]
    lines = []
    if "encrypt_over_bare" in info:
        full = _find(rows, "openkms", "Encrypt", top)
        bare = _find(rows, "bare", "Encrypt", top)
        assert full and bare
        lines.append(
            f"- **Encrypt, full path / bare ceiling at {top} connections: {info['encrypt_over_bare']:.2f}** "
            f"({_fmt_rate(full.rps)} / {_fmt_rate(bare.rps)} req/s)"
            + ("" if info["both_valid"] else " (**one of the rows is INVALID**)")
            + f"; target ≥ {RATIO_TARGET}: "
            + ("met" if info["encrypt_over_bare"] >= RATIO_TARGET else "**missed**")
        )
        if "encrypt_p99_over_bare_p99" in info:
            p99_ratio = info["encrypt_p99_over_bare_p99"]
            lines.append(
                f"- **Encrypt p99 / bare p99 of the same run at {top} connections: {p99_ratio:.2f}x** "
                f"({full.p99_ms:.2f} / {bare.p99_ms:.2f} ms; worst runs {full.worst_p99_ms:.2f} / "
                f"{bare.worst_p99_ms:.2f} ms); target ≤ {P99_RATIO_TARGET}x: "
                + ("met" if p99_ratio <= P99_RATIO_TARGET else "**missed**")
            )
    for name, ok in info["p99_below_10ms"].items():
        row = next(r for r in rows if f"{r.target} {r.action}" == name and r.connections == top)
        lines.append(
            f"- p99 < {P99_GOAL_MS:g} ms at {top} connections, {name}: "
            f"{'yes' if ok else '**no**'} ({row.p99_ms:.2f} ms)"
        )
    return lines


def machine_line(machine: Mapping[str, Any]) -> str:
    packages = machine["packages"]
    return (
        f"{machine['date']}, {machine['nproc']} CPUs ({machine['cpu_model']}), kernel {machine['kernel']}, "
        f"Python {machine['python']}, uvicorn {packages.get('uvicorn')}, uvloop {packages.get('uvloop')}, "
        f"httptools {packages.get('httptools')}, cryptography {packages.get('cryptography')}, "
        f"{machine['wrk']}"
    )


def write_markdown(
    path: Path,
    rows: Sequence[Row],
    info: Mapping[str, Any],
    cold: Sequence[cold_burst.ColdResult],
    result: Mapping[str, Any],
    extra: Sequence[str] = (),
) -> str:
    plan = result["plan"]
    machine = result["machine"]
    micro_part = result.get("micro") or {}
    block = [
        f"Measured {machine_line(machine)}.",
        "",
        f"wrk -t{plan['threads']} -cC -d{plan['duration']:g}s --latency, warm-up {plan['warmup']:g} s, "
        f"{plan['runs']} run(s) per row, median shown (runs listed); "
        f"server: {plan['workers']} uvicorn workers, wrk on the same {machine['nproc']} cores. "
        "Any error makes a row INVALID.",
    ]
    if result.get("ablated"):
        block[:0] = [
            f"**ABLATED**: {', '.join(result['ablated'])} taken out of the steady scenario's full server "
            "(bench/ablation); not OpenKMS as shipped.",
            "",
        ]
    if rows:
        block += ["", markdown_table(rows), "", *summary_lines(rows, info)]
        key_store_lines = key_stores.summary_lines(rows)
        if key_store_lines:
            block += [
                "",
                "Key stores (SoftHSM2 and the XKS proxy on this machine; ratios in the same run):",
                "",
            ]
            block += key_store_lines
    if cold:
        block += ["", *cold_burst.markdown_block(cold, plan["duration"], plan["runs"])]
    if extra:
        block += ["", *extra]
    readme_block = "\n".join(block)
    doc = ["# OpenKMS benchmark: latest results", "", readme_block, ""]
    invalid = [row for row in rows if not row.valid]
    if invalid:
        doc += ["## INVALID rows", ""]
        doc += [f"- {r.target} {r.action} c={r.connections}: {'; '.join(r.problems())}" for r in invalid]
        doc.append("")
    doc += [f"- cold burst on {c.backend}: {'; '.join(c.problems())}" for c in cold if not c.valid]
    findings = result.get("findings", {}).get("openkms", {})
    if findings.get("audit", {}).get("not_success"):
        doc += ["Server audit log, records that are not Success (action, HTTP status, code: count):", ""]
        doc += [f"- {name}: {count:,}" for name, count in findings["audit"]["not_success"].items()]
        doc.append("")
    for c in cold:
        if c.findings.get("audit", {}).get("not_success"):
            doc += [f"Cold burst on {c.backend}, audit records that are not Success:", ""]
            doc += [f"- {name}: {count:,}" for name, count in c.findings["audit"]["not_success"].items()]
            doc.append("")
    if micro_part:
        nonce = micro_part["nonce_store"]
        doc += [
            "## Per-request components, in process",
            "",
            f"- `SharedNonceStore.remember` ({nonce['slots']:,} slots, one process, fresh nonce per call): "
            f"**{nonce['shared_us_per_call']:.2f} µs/call** (MemoryNonceStore for reference: "
            f"{nonce['memory_us_per_call']:.2f} µs); "
            f"median of {nonce['runs']} runs of {nonce['calls_per_run']:,} calls.",
            "- `JsonlAuditSink.append` in one uvloop event loop, N tasks appending as fast as they can:",
            "",
            "| tasks | fsync | appends/s | write(+fsync) batches/s | mean batch "
            "| CPU µs/append | CPU µs/batch |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for case in micro_part["audit"]:
            batches = case.get("fsyncs_per_s", case.get("writes_per_s"))
            doc.append(
                f"| {case['tasks']} | {'yes' if case['fsync'] else 'no'} | {case['appends_per_s']:,} | "
                f"{batches:,} | {case['mean_batch']} | {case['cpu_us_per_append']} | "
                f"{case['cpu_us_per_batch']} |"
            )
        doc.append("")
    doc += [
        "## Machine",
        "",
        "```json",
        json.dumps(machine, indent=2),
        "```",
        "",
        "Raw numbers, every run, CPU split per server process: `latest.json`. "
        "How to read them: bench/README.md.",
        "",
    ]
    path.write_text("\n".join(doc))
    return readme_block


def update_readme(readme: Path, block: str) -> None:
    text = readme.read_text() if readme.exists() else ""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        print(
            f"\n{readme} has no {README_START} ... {README_END} markers; "
            "this is what would go between them:\n"
        )
        print(block)
        print()
        return
    updated = text[: start + len(README_START)] + "\n" + block + "\n" + text[end:]
    readme.write_text(updated)
    log(f"updated the performance block of {readme}")


# ----------------------------------------------------------------------------------------------------
# main


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured run (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, 1 run per row")
    parser.add_argument(
        "--runs", type=int, default=None, help="measured runs per row, median reported (default 3)"
    )
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per row (default 2)")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated wrk -c values")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--actions", default=",".join(ACTIONS), help="actions against the full server")
    parser.add_argument("--targets", default="openkms,bare", help="openkms, bare or both")
    parser.add_argument(
        "--max-rate", type=float, default=30_000, help="req/s the request files are sized for"
    )
    parser.add_argument("--no-micro", action="store_true", help="skip the nonce store / audit sink timings")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS),
        help="scenarios to run: steady (the action rows and the ceiling), cold-burst, micro, key-stores "
        "(Encrypt and AsymmetricSign on SoftHSM2 and external keys) (default all)",
    )  # fmt: skip
    parser.add_argument(
        "--key-store-connections", default="8",
        help="key-stores scenario: wrk -c values for the software/hsm/external rows (default 8)",
    )  # fmt: skip
    parser.add_argument(
        "--cold-databases", default=",".join(cold_burst.BACKENDS), help="cold-burst stores: postgres, sqlite"
    )
    parser.add_argument(
        "--cold-connections", default="4,32", help="cold-burst wrk -c: warm requests, burst (default 4,32)"
    )
    parser.add_argument(
        "--cold-targets", type=int, default=4000,
        help="cold-burst keys (one alias each) and RAM users (one access key each) (default 4000)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", default=os.environ.get("OPENKMS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server (admin URL) on which cold-burst creates and drops its database",
    )  # fmt: skip
    parser.add_argument(
        "--instance-connections",
        default="1,32",
        help="instance-api scenario: wrk -c values for AdvanceEncrypt beside OpenAPI Encrypt (default 1,32)",
    )
    parser.add_argument(
        "--rsa-connections", default="8", help="rsa scenario: wrk -c values for AsymmetricSign (default 8)"
    )
    parser.add_argument(
        "--nodes-connections", type=int, default=32,
        help="nodes scenario: connections in all (one node: all on it; two nodes: half each) (default 32)",
    )  # fmt: skip
    parser.add_argument(
        "--scale-databases", default=",".join(scale.BACKENDS), help="scale stores: postgres, sqlite"
    )
    parser.add_argument(
        "--scale-sizes", default=",".join(str(n) for n in scale.SIZES),
        help="scale: key counts in the account's store, ascending (default 1000,100000,1000000)",
    )  # fmt: skip
    parser.add_argument(
        "--scale-requests",
        type=int,
        default=200,
        help="scale: requests per run and case, at most (default 200)",
    )
    parser.add_argument(
        "--scale-seconds",
        type=float,
        default=None,
        help="scale: seconds per run and case, at most (default 5)",
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for openkms serve, e.g. OPENKMS_NONCE_SLOTS=16777216 (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--ablate", default="", metavar="PARTS",
        help=f"take parts out of the full server to bound their cost: {', '.join(ABLATABLE)} "
        "(bench/ablation); results go to latest-ablated.*, never to the README",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results", help="results folder")
    parser.add_argument("--readme", type=Path, default=REPO_DIR / "README.md", help="README to update")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder (data dir, logs)")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.runs = args.runs or (1 if args.quick else 3)
    args.warmup = args.warmup or (1.0 if args.quick else 2.0)
    for item in args.server_env:
        if "=" not in item or not item.startswith("OPENKMS_"):
            parser.error(f"--server-env wants OPENKMS_NAME=VALUE, not {item!r}")
    args.ablate = sorted({part.strip() for part in args.ablate.split(",") if part.strip()})
    for part in args.ablate:
        if part not in ABLATABLE:
            parser.error(f"--ablate takes {', '.join(ABLATABLE)}, not {part!r}")
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    if args.ablate and "steady" not in args.only:
        parser.error("--ablate applies to the steady scenario's full server: add steady to --only")
    for name in args.only:
        if name not in SCENARIOS:
            parser.error(f"--only takes {', '.join(SCENARIOS)}, not {name!r}")
    args.rsa_connections = tuple(int(c) for c in args.rsa_connections.split(",") if c.strip())
    args.instance_connections = tuple(int(c) for c in args.instance_connections.split(",") if c.strip())
    args.scale_databases = tuple(name.strip() for name in args.scale_databases.split(",") if name.strip())
    for name in args.scale_databases:
        if name not in scale.BACKENDS:
            parser.error(f"--scale-databases takes {', '.join(scale.BACKENDS)}, not {name!r}")
    args.scale_sizes = tuple(sorted(int(n) for n in args.scale_sizes.split(",") if n.strip()))
    args.scale_seconds = args.scale_seconds or (2.0 if args.quick else 5.0)
    args.key_store_connections = tuple(int(c) for c in args.key_store_connections.split(",") if c.strip())
    args.cold_databases = tuple(name.strip() for name in args.cold_databases.split(",") if name.strip())
    for name in args.cold_databases:
        if name not in cold_burst.BACKENDS:
            parser.error(f"--cold-databases takes {', '.join(cold_burst.BACKENDS)}, not {name!r}")
    try:
        args.cold_connections = tuple(int(c) for c in args.cold_connections.split(","))
    except ValueError:
        parser.error("--cold-connections wants two numbers, e.g. 4,32")
    if len(args.cold_connections) != 2:
        parser.error("--cold-connections wants two numbers, e.g. 4,32")
    return args


def cold_plan(args: argparse.Namespace) -> cold_burst.ColdPlan:
    warm, burst = args.cold_connections
    return cold_burst.ColdPlan(
        backends=args.cold_databases,
        targets=args.cold_targets,
        warm_connections=warm,
        burst_connections=burst,
        duration=args.duration,
        warmup=args.warmup,
        runs=args.runs,
        workers=args.workers,
        threads=args.threads,
        max_rate=args.max_rate,
        postgres_admin_url=args.postgres,
        server_env=dict(item.split("=", 1) for item in args.server_env),
    )


def scale_plan(args: argparse.Namespace) -> scale.ScalePlan:
    return scale.ScalePlan(
        backends=args.scale_databases,
        sizes=args.scale_sizes,
        runs=args.runs,
        requests=args.scale_requests,
        seconds=args.scale_seconds,
        workers=args.workers,
        postgres_admin_url=args.postgres,
        server_env=dict(item.split("=", 1) for item in args.server_env),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    plan = Plan(
        duration=args.duration,
        warmup=args.warmup,
        runs=args.runs,
        connections=tuple(int(c) for c in args.connections.split(",")),
        threads=args.threads,
        max_rate=args.max_rate,
        workers=args.workers,
    )
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    creds = Credentials("LTAIbench" + os.urandom(6).hex(), base64.b64encode(os.urandom(24)).decode())
    machine = machine_facts()
    log(f"machine: {machine_line(machine)}")
    result: dict[str, Any] = {"machine": machine, "plan": asdict(plan), "findings": {}}
    result["ablated"] = args.ablate
    cold: list[cold_burst.ColdResult] = []
    extra: list[str] = []  # the scale, rsa and nodes scenarios' report lines
    scaled: list[scale.ScaleResult] = []
    nodes_invalid: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="openkms-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            bench = Bench(plan, work, creds)
            started = time.monotonic()
            if "steady" in args.only:
                result["findings"] = bench_targets(bench, stack, actions, targets, args)
            if "key-stores" in args.only:
                ceiling = start_bare(bench, stack, args)  # its own, interleaved with these rows
                result["key_stores"] = key_stores.run_scenario(
                    bench, stack, args.workers, args.key_store_connections, replace(ceiling, name="ceiling")
                )
            if "cold-burst" in args.only:
                cold = cold_burst.run_scenario(cold_plan(args), work, creds)
                result["cold_burst"] = [c.to_json() for c in cold]
            if "rsa" in args.only:
                signed = rsa.run_scenario(bench, stack, args.workers, args.rsa_connections)
                result["rsa"] = rsa.to_json(signed)
                extra += ["", *rsa.summary_lines(signed, bench.rows, args.workers)]
            if "instance-api" in args.only:
                instance_rows = instance_api.run_scenario(
                    bench, stack, args.workers, args.instance_connections
                )
                extra += ["", *instance_api.summary_lines(instance_rows)]
            if "nodes" in args.only:
                clustered = nodes.run_scenario(
                    plan, work / "nodes", creds, args.postgres, args.nodes_connections
                )
                result["nodes"] = clustered.to_json()
                extra += ["", *nodes.summary_lines(clustered)]
                if not clustered.valid:
                    nodes_invalid.append("nodes")
            if "scale" in args.only:
                scaled = scale.run_scenario(scale_plan(args), work, creds)
                result["scale"] = {"plan": asdict(scale_plan(args)), "results": [r.to_json() for r in scaled]}
                extra += ["", *scale.markdown_block(scaled, result["scale"]["plan"])]
            result["elapsed_s"] = round(time.monotonic() - started, 1)
        if "micro" in args.only and not args.no_micro:
            log("in-process costs: nonce store, audit sink")
            result["micro"] = {
                "nonce_store": micro.nonce_store_cost(),
                "audit": micro.audit_append_cost(base_dir=work),
            }
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            # The servers' replay caches live in /dev/shm, named after their data dirs.
            for data_dir in work.glob("**/openkms-data"):
                shutil.rmtree(node_memory_dir(data_dir), ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    # Reported grouped by target, action and connections, whatever order they were measured in.
    order = {name: index for index, name in enumerate(("openkms", "bare"))}
    rows = sorted(
        bench.rows,
        key=lambda row: (
            order.get(row.target, 9),
            actions.index(row.action) if row.action in actions else 9,
            row.connections,
        ),
    )
    info = summary(rows, plan.connections)
    result["summary"] = info
    result["rows"] = [row.to_json() for row in rows]
    args.results.mkdir(parents=True, exist_ok=True)
    stem = "latest-ablated" if args.ablate else "latest"
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    block = write_markdown(args.results / f"{stem}.md", rows, info, cold, result, extra)
    print(block)
    if not args.ablate:
        update_readme(args.readme, block)
    invalid = [f"{r.target} {r.action} c={r.connections}" for r in rows if not r.valid]
    invalid += [f"cold burst on {c.backend}" for c in cold if not c.valid]
    invalid += [f"scale on {s.backend}" for s in scaled if not s.valid]
    invalid += nodes_invalid
    if invalid:
        loud(f"{len(invalid)} row(s) INVALID: " + ", ".join(invalid))
    log(f"results: {args.results / f'{stem}.md'}, {args.results / f'{stem}.json'}")
    return 1 if invalid else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        loud("interrupted: servers stopped, temporary files removed, no results written")
        raise SystemExit(130) from None
