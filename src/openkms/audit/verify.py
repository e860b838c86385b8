"""Verification of the audit files written by `JsonlAuditSink`.

Owns the checks. In each file: every line is complete canonical JSON, `seq` counts from 0 by one,
`prev` names the previous record's hash, and `hash` matches the record: SHA-256 before the file's
`AuditChainKeyed` record, HMAC-SHA256 under the server's chain key from it on (so a chain recomputed
by someone without the key fails at the first record they changed). Across files, given the sealed
heads (`domain.audit_heads`): a file whose head is recorded must exist, hold at least that many
records and have that hash at that seq (records cut off the end, a file deleted whole), and a file's
genesis link must name a previous file of its slot that exists and holds the linked hash.

What it cannot see: records cut off after the last published head (heads are at most about a second
old), and a rewrite by someone who holds the server's keys and can write the database. Without the
chain key, keyed hashes are not checked (the report says so). Reads files only; never modifies them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from openkms.audit.sink import GENESIS_ACTION, KEYED_ACTION, ZERO_HASH, canonical_json
from openkms.domain.audit_heads import Head


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    records: int  # records verified (before the first bad line, if any)
    first_bad_line: int | None  # 1-based
    reason: str | None
    notes: tuple[str, ...] = field(default=())  # what was not or could not be checked


@dataclass(slots=True)
class _Scan:
    """What one pass over a file found besides its verdict."""

    slot: str | None = None
    previous_file: str | None = None
    previous_hash: str | None = None
    keyed: bool = False  # an AuditChainKeyed record was seen
    unchecked: int = 0  # keyed records whose hash could not be checked (no key given)
    last_seq: int = -1
    found: set[str] = field(default_factory=set)  # which of the wanted hashes the file holds


def verify_file(
    path: Path,
    *,
    key: bytes | None = None,
    head: Head | None = None,
    wanted: Iterable[str] = (),
) -> VerifyReport:
    """Check one file; against its sealed `head` when one is given."""
    report, _scan = _verify(path, key, head, frozenset(wanted))
    return report


def verify_directory(
    directory: Path, *, key: bytes | None = None, heads: Iterable[Head] | None = None
) -> list[tuple[Path, VerifyReport]]:
    """Every `*.jsonl` file in `directory` (not recursive), in name order, checked against the sealed
    `heads` of this node when given; a file with a head but no file is reported as deleted."""
    paths = sorted(directory.glob("*.jsonl"))
    by_name = {path.name: path for path in paths}
    head_of: Mapping[str, Head] = {head.file: head for head in heads or ()}
    links = {path.name: _genesis_link(path) for path in paths}
    wanted: dict[str, set[str]] = {}
    for link in links.values():
        if link is not None and link[0] in by_name:
            wanted.setdefault(link[0], set()).add(link[1])
    results: list[tuple[Path, VerifyReport]] = []
    found: dict[str, set[str]] = {}
    for path in paths:
        report, scan = _verify(path, key, head_of.get(path.name), frozenset(wanted.get(path.name, ())))
        found[path.name] = scan.found
        results.append((path, report))
    for index, (path, report) in enumerate(results):
        link = links[path.name]
        if not report.ok or link is None:
            continue
        previous, linked_hash = link
        if previous not in by_name:
            results[index] = (
                path,
                _broken(report, f"the previous file of its slot, {previous}, is missing (deleted)"),
            )
        elif linked_hash not in found[previous]:
            results[index] = (
                path,
                _broken(report, f"the previous file of its slot, {previous}, lacks the record it links to"),
            )
    for name, head in sorted(head_of.items()):
        if name not in by_name:
            missing = VerifyReport(
                ok=False,
                records=0,
                first_bad_line=None,
                reason=(
                    f"the file is missing (deleted): its sealed head names record {head.seq} "
                    f"of slot {head.slot}"
                ),
            )
            results.append((directory / name, missing))
    return results


def _broken(report: VerifyReport, reason: str) -> VerifyReport:
    return VerifyReport(ok=False, records=report.records, first_bad_line=1, reason=reason, notes=report.notes)


def _genesis_link(path: Path) -> tuple[str, str] | None:
    """(previous file, linked hash) named by the file's first record, if it names one."""
    with path.open("rb") as lines:
        first = lines.readline()
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("action") != GENESIS_ACTION:
        return None
    previous, linked = record.get("previous_file"), record.get("previous_hash")
    if isinstance(previous, str) and isinstance(linked, str):
        return previous, linked
    return None


def _verify(
    path: Path, key: bytes | None, head: Head | None, wanted: frozenset[str]
) -> tuple[VerifyReport, _Scan]:
    scan = _Scan()
    records = 0
    prev = ZERO_HASH
    keyed = False
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            problem, record = _parse(raw, expected_seq=number - 1, expected_prev=prev)
            if problem is None:
                assert record is not None
                problem, keyed = _check_hash(record, raw, key, keyed, scan)
            if problem is not None:
                return VerifyReport(False, records, number, problem, _notes(scan)), scan
            assert record is not None
            digest = str(record["hash"])
            if head is not None and record["seq"] == head.seq and digest != head.hash:
                reason = f"record {head.seq} differs from the sealed head (rewritten)"
                return VerifyReport(False, records, number, reason, _notes(scan)), scan
            if digest in wanted:
                scan.found.add(digest)
            if number == 1 and record.get("action") == GENESIS_ACTION:
                slot = record.get("slot")
                scan.slot = slot if isinstance(slot, str) else None
            prev = digest
            scan.last_seq = number - 1
            records += 1
    if head is not None and scan.last_seq < head.seq:
        reason = (
            f"records cut off the end: the sealed head names record {head.seq}, "
            f"the file ends at {scan.last_seq}"
        )
        return VerifyReport(False, records, None, reason, _notes(scan)), scan
    return VerifyReport(True, records, None, None, _notes(scan)), scan


def _notes(scan: _Scan) -> tuple[str, ...]:
    notes = []
    if scan.unchecked:
        notes.append(
            f"{scan.unchecked} keyed records' hashes not checked: no chain key (the store is sealed)"
        )
    if not scan.keyed:
        notes.append("unkeyed: written before the chain key was in use (legacy, or the server stayed sealed)")
    return tuple(notes)


def _parse(
    raw: bytes, *, expected_seq: int, expected_prev: str
) -> tuple[str | None, dict[str, object] | None]:
    if not raw.endswith(b"\n"):
        return "the line is truncated (no newline at the end)", None
    try:
        record = orjson.loads(raw[:-1])
    except orjson.JSONDecodeError:
        return "the line is not valid JSON", None
    if not isinstance(record, dict):
        return "the line is not a JSON object", None
    if not isinstance(record.get("hash"), str):
        return "the record has no hash", None
    seq = record.get("seq")
    if type(seq) is not int or seq != expected_seq:
        return f"seq is {seq!r}, expected {expected_seq} (line deleted, inserted or reordered)", None
    if record.get("prev") != expected_prev:
        return "prev does not match the previous record's hash (chain broken)", None
    return None, record


def _check_hash(
    record: dict[str, object], raw: bytes, key: bytes | None, keyed: bool, scan: _Scan
) -> tuple[str | None, bool]:
    """(what is wrong or None, whether the chain is keyed after this record)."""
    claimed = record.pop("hash")
    body = canonical_json(record)  # type: ignore[arg-type]
    record["hash"] = claimed
    if canonical_json(record) != raw[:-1]:  # type: ignore[arg-type]
        return "the line is not in canonical form (rewritten)", keyed
    action = record.get("action")
    if action == GENESIS_ACTION:
        keyed = False  # a process that opened the file starts unkeyed
    elif action == KEYED_ACTION:
        keyed = scan.keyed = True
    if not keyed:
        if hashlib.sha256(body).hexdigest() != claimed:
            return "the hash does not match the record (edited)", keyed
        return None, keyed
    if key is None:
        scan.unchecked += 1
        return None, keyed
    if not hmac.compare_digest(hmac.digest(key, body, "sha256").hex(), str(claimed)):
        return (
            "the keyed hash does not match the record (edited, or the chain recomputed without the key)",
            keyed,
        )
    return None, keyed
