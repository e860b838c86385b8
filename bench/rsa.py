"""The rsa scenario of `make bench`: AsymmetricSign with an RSA_2048 key (RSA_PKCS1_SHA_256 and
RSA_PSS_SHA_256) through the full path, against this machine's bare RSA-2048 signing rate.

The bare rate: pyca/cryptography signing a SHA-256 digest with the same padding, in as many processes as
the server has workers, each as fast as it can for the run's duration; the rate is the sum. Each wrk
run of the server alternates with one bare run, so the box's drift falls on both sides of the ratio.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import multiprocessing
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from bench.harness import log, openkms_server
from bench.presign import rpc_call

if TYPE_CHECKING:
    from bench.run import Bench, Row

ALGORITHMS = ("RSA_PKCS1_SHA_256", "RSA_PSS_SHA_256")


def _padding(algorithm: str) -> padding.AsymmetricPadding:
    if algorithm == "RSA_PSS_SHA_256":
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return padding.PKCS1v15()


def _sign_for(algorithm: str, seconds: float) -> tuple[int, float]:
    """Signatures made in about `seconds` by one process (its own fresh key): (count, elapsed)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    digest = hashlib.sha256(b"openkms bench").digest()
    pad, prehashed = _padding(algorithm), utils.Prehashed(hashes.SHA256())
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(16):
            key.sign(digest, pad, prehashed)
        count += 16
    return count, time.perf_counter() - started


def bare_rate(pool: ProcessPoolExecutor, processes: int, algorithm: str, seconds: float) -> float:
    """Signatures per second of `processes` processes signing at once."""
    futures = [pool.submit(_sign_for, algorithm, seconds) for _ in range(processes)]
    return sum(count / elapsed for count, elapsed in (f.result() for f in futures))


@dataclass
class RsaCase:
    algorithm: str
    connections: int
    bare: list[float] = field(default_factory=list)  # bare signatures/s, one per run

    @property
    def bare_rps(self) -> float:
        return float(statistics.median(self.bare)) if self.bare else 0.0


def run_scenario(
    bench: Bench, stack: contextlib.ExitStack, workers: int, connections: Sequence[int]
) -> list[RsaCase]:
    from bench.run import Row, Target

    work = bench.work / "rsa"
    work.mkdir(parents=True, exist_ok=True)
    server = openkms_server(work, bench.creds, workers, {})
    stack.callback(server.stop)
    server.start()
    instance = rpc_call(server.url, bench.creds, "ListKmsInstances")["KmsInstances"]["KmsInstance"][0]
    meta = rpc_call(server.url, bench.creds, "CreateKey", DKMSInstanceId=str(instance["KmsInstanceId"]),
                    KeySpec="RSA_2048", KeyUsage="SIGN/VERIFY")["KeyMetadata"]  # fmt: skip
    digest = base64.b64encode(hashlib.sha256(b"openkms bench").digest()).decode()
    pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")))
    cases: list[RsaCase] = []
    for conns in connections:
        for algorithm in ALGORITHMS:
            params = {"KeyId": meta["KeyId"], "KeyVersionId": meta["PrimaryKeyVersion"],
                      "Algorithm": algorithm, "Digest": digest}  # fmt: skip
            rpc_call(server.url, bench.creds, "AsymmetricSign", **params)  # a broken setup fails here
            target = Target(server, f"openkms RSA_2048 {algorithm}", params)
            row = Row(target.name, "AsymmetricSign", conns)
            case = RsaCase(algorithm, conns)
            rate = bench._warm(target, "AsymmetricSign", conns, row)
            bare_rate(pool, workers, algorithm, 1.0)  # warm the pool's processes
            for index in range(bench.plan.runs):
                bench._run(target, "AsymmetricSign", conns, row, rate, index)
                case.bare.append(bare_rate(pool, workers, algorithm, bench.plan.duration))
                log(f"  run {index + 1}/{bench.plan.runs} bare RSA-2048 {algorithm}, {workers} processes: "
                    f"{case.bare[-1]:,.0f} signatures/s")  # fmt: skip
            bench.rows.append(row)
            cases.append(case)
    server.stop()
    return cases


def summary_lines(cases: Sequence[RsaCase], rows: Sequence[Row], workers: int) -> list[str]:
    lines = [
        f"AsymmetricSign RSA_2048 (`--only rsa`), full path against the bare RSA-2048 signing rate of this "
        f"machine (pyca/cryptography in {workers} processes, as many as the server's workers; "
        "runs alternated):",
        "",
    ]
    for case in cases:
        row = next(
            r for r in rows
            if r.target == f"openkms RSA_2048 {case.algorithm}" and r.connections == case.connections
        )  # fmt: skip
        ratio = row.rps / case.bare_rps if case.bare_rps else 0.0
        lines.append(
            f"- {case.algorithm} c={case.connections}: **{ratio:.2f} of bare** ({row.rps:,.0f} req/s / "
            f"{case.bare_rps:,.0f} signatures/s), p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms "
            f"(worst run {row.worst_p99_ms:.2f} ms)" + ("" if row.valid else " (**INVALID**)")
        )
    return lines


def to_json(cases: Sequence[RsaCase]) -> list[dict[str, Any]]:
    return [
        {
            "algorithm": c.algorithm,
            "connections": c.connections,
            "bare_rps": round(c.bare_rps, 1),
            "bare_runs": c.bare,
        }
        for c in cases
    ]
