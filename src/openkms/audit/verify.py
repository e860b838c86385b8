"""Verification of hash-chained audit files written by `JsonlAuditSink`.

Owns the checks: every line is complete canonical JSON, its `hash` matches its content, `seq` counts
from 0 by one, and `prev` names the previous record's hash. That detects an edited field, a deleted,
inserted or reordered line and a truncated last line. It cannot detect lines cut off at the end of the
file on a line boundary, nor a chain recomputed from scratch by someone rewriting the whole file:
anchor the last hash elsewhere for that. Reads files only; never modifies them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from openkms.audit.sink import ZERO_HASH, canonical_json


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    records: int  # records verified (before the first bad line, if any)
    first_bad_line: int | None  # 1-based
    reason: str | None


def verify_file(path: Path) -> VerifyReport:
    records = 0
    prev = ZERO_HASH
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            problem, digest = _check_line(raw, expected_seq=number - 1, expected_prev=prev)
            if problem is not None:
                return VerifyReport(ok=False, records=records, first_bad_line=number, reason=problem)
            prev = digest
            records += 1
    return VerifyReport(ok=True, records=records, first_bad_line=None, reason=None)


def verify_directory(directory: Path) -> list[tuple[Path, VerifyReport]]:
    """Every `*.jsonl` file in `directory` (not recursive), in name order."""
    return [(path, verify_file(path)) for path in sorted(directory.glob("*.jsonl"))]


def _check_line(raw: bytes, *, expected_seq: int, expected_prev: str) -> tuple[str | None, str]:
    """(None, the record's hash) if the line is good, else (what is wrong, "")."""
    if not raw.endswith(b"\n"):
        return "the line is truncated (no newline at the end)", ""
    line = raw[:-1]
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "the line is not valid JSON", ""
    if not isinstance(record, dict):
        return "the line is not a JSON object", ""
    claimed = record.pop("hash", None)
    if not isinstance(claimed, str):
        return "the record has no hash", ""
    if hashlib.sha256(canonical_json(record)).hexdigest() != claimed:
        return "the hash does not match the record (edited)", ""
    record["hash"] = claimed
    if canonical_json(record) != line:
        return "the line is not in canonical form (rewritten)", ""
    seq = record.get("seq")
    if type(seq) is not int or seq != expected_seq:
        return f"seq is {seq!r}, expected {expected_seq} (line deleted, inserted or reordered)", ""
    if record.get("prev") != expected_prev:
        return "prev does not match the previous record's hash (chain broken)", ""
    return None, claimed
