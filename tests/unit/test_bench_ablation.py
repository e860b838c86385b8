"""The bench's ablations (bench/ablation/sitecustomize.py) take out what they name and nothing else,
and only in a process started with them (`python -m bench.run --ablate ...`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter, where Python imports the ablation's sitecustomize at start-up.
_PROBE = r"""
import asyncio, json, sys
from pathlib import Path
from openkms.audit.event import AuditEvent
from openkms.audit.sink import JsonlAuditSink
from openkms.node.nonces import SharedNonceStore

work = Path(sys.argv[1])
store = SharedNonceStore(work / "nonces", slots=1024)
held = []
def admit():
    held.append(store.lock._thread_lock.locked())
first = store.remember("LTAIx", "nonce-1", 200.0, 100.0, account="1", admit=admit)
again = store.remember("LTAIx", "nonce-1", 200.0, 100.0, account="1", admit=admit)

async def audit():
    sink = JsonlAuditSink(work / "audit.jsonl")
    event = AuditEvent("r1", "2026-12-05T00:00:00.000Z", "p", "1", "Encrypt", None, None, "Success", 200,
                       None, "cn-hangzhou", None)
    await asyncio.wait_for(sink.append(event), 5)
    chained = sink._seq
    await sink.aclose()
    return chained, (work / "audit.jsonl").read_bytes().count(b"\n")

chained, lines = asyncio.run(audit())
print(json.dumps({"first": first, "again": again, "admit_held": held, "seq": chained, "lines": lines}))
"""


def _probe(ablate: str | None, work: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = os.pathsep.join((str(REPO / "bench" / "ablation"), str(REPO)))
    if ablate is not None:
        env["BENCH_ABLATE"] = ablate
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_parts_nothing_is_taken_out(tmp_path: Path) -> None:
    result = _probe(None, tmp_path)
    assert (result["first"], result["again"]) == (True, False)  # the replay is caught
    assert result["admit_held"] == [True]  # charged once, under the lock, not for the replay
    assert result["seq"] == 2 and result["lines"] == 2  # genesis and the event, written


@pytest.mark.parametrize(
    ("parts", "first_again", "admits", "lines"),
    [
        ("audit", (True, False), [True], 0),
        ("replay", (True, True), [True, True], 2),
        ("limits", (True, False), [], 2),
        ("replay,limits", (True, True), [], 2),
        ("audit,replay,limits", (True, True), [], 0),
    ],
)
def test_each_part_is_taken_out_alone(
    parts: str, first_again: tuple[bool, bool], admits: list[bool], lines: int, tmp_path: Path
) -> None:
    result = _probe(parts, tmp_path)
    assert (result["first"], result["again"]) == first_again
    assert result["admit_held"] == admits  # whatever is charged is charged under the lock
    assert result["seq"] == 2  # the record is always built and chained
    assert result["lines"] == lines
