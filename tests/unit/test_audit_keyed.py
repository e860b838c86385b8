"""The audit sink's keyed chain, sealed heads and file links, and the record bounds, in process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from openkms.audit import AuditEvent, JsonlAuditSink, verify_directory, verify_file
from openkms.audit.event import INVALID_ACTION, action_token, bounded_record, cap
from openkms.domain.audit_heads import FileLink, Head

KEY = b"k" * 32


class _Heads:
    """A HeadStore in memory (the database's is exercised by the live-server tests)."""

    def __init__(self) -> None:
        self.published: dict[str, Head] = {}

    def publish(self, head: Head) -> None:
        self.published[head.file] = head

    def last_of_slot(self, slot: str) -> Head | None:
        return None

    def heads(self) -> list[Head]:
        return list(self.published.values())


def _event(number: int, **changes: object) -> AuditEvent:
    event = AuditEvent(
        request_id=f"req-{number}",
        time="2026-12-04T00:00:00.000Z",
        principal="acs:ram::1234567890123456:root",
        account_id="1234567890123456",
        action="Encrypt",
        key_id=None,
        key_version_id=None,
        result="Success",
        http_status=200,
        source_ip="127.0.0.1",
        region="cn-hangzhou",
        reason=None,
    )
    return event._replace(**changes)  # type: ignore[arg-type]


def _write(path: Path, count: int, heads: _Heads, link: FileLink | None = None) -> None:
    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=0, slot="0", link=link, heads=heads)
        await sink.append(_event(0))  # written before unseal: unkeyed
        sink.use_chain_key(KEY)
        for number in range(1, count):
            await sink.append(_event(number))
        await sink.aclose()

    asyncio.run(main())


def test_action_tokens_and_caps() -> None:
    assert action_token("Encrypt") == "Encrypt"
    assert action_token("ram:CreateUser") == "ram:CreateUser"
    assert action_token("A" * 1000) == "A" * 64
    assert action_token("Enc<script>") == "Enc"
    assert action_token("<script>") == INVALID_ACTION
    assert action_token("") == ""
    assert cap("x" * 300) == "x" * 255 + "\u2026"
    assert cap(None) is None
    record = bounded_record({"action": "B" * 5000, "reason": "r" * 5000, "prev": "0" * 64, "seq": 3})
    assert record == {"action": "B" * 64, "reason": "r" * 255 + "\u2026", "prev": "0" * 64, "seq": 3}


def test_an_oversized_record_is_cut_down_by_the_sink(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        await sink.append(_event(0, action="X" * 100_000, reason="y" * 100_000, principal="p" * 100_000))
        await sink.aclose()

    asyncio.run(main())
    last = path.read_bytes().splitlines()[-1]
    assert len(last) < 2048  # every text field capped
    assert json.loads(last)["action"] == "X" * 64
    assert verify_file(path).ok


def test_the_chain_is_keyed_after_unseal_and_the_head_published(tmp_path: Path) -> None:
    heads = _Heads()
    path = tmp_path / "a.jsonl"
    _write(path, 5, heads)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["action"] for r in records][:3] == ["AuditLogOpened", "Encrypt", "AuditChainKeyed"]
    assert heads.published[path.name] == Head(path.name, "0", records[-1]["seq"], records[-1]["hash"])

    keyed = verify_file(path, key=KEY, head=heads.published[path.name])
    assert keyed.ok and keyed.notes == ()
    unkeyed = verify_file(path)
    assert unkeyed.ok and "not checked" in unkeyed.notes[0]
    wrong = verify_file(path, key=b"w" * 32)
    assert not wrong.ok and wrong.first_bad_line == 3  # the marker itself is keyed


def test_a_new_file_links_to_the_previous_one_of_its_slot(tmp_path: Path) -> None:
    heads = _Heads()
    first, second = tmp_path / "audit-1.jsonl", tmp_path / "audit-2.jsonl"
    _write(first, 3, heads)
    head = heads.published[first.name]
    _write(second, 3, heads, link=FileLink(first.name, head.hash))
    assert all(report.ok for _, report in verify_directory(tmp_path, key=KEY, heads=heads.heads()))

    lines = first.read_bytes().splitlines(keepends=True)
    first.write_bytes(b"".join(lines[:-1]))  # without heads, only the link shows the cut
    reports = dict(verify_directory(tmp_path, key=KEY))
    assert reports[first].ok
    assert not reports[second].ok and "lacks the record it links to" in str(reports[second].reason)


def test_legacy_files_verify_as_unkeyed(tmp_path: Path) -> None:
    path = tmp_path / "legacy.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        await sink.append(_event(0))
        await sink.aclose()

    asyncio.run(main())
    report = verify_file(path, key=KEY)
    assert report.ok and any("unkeyed" in note for note in report.notes)
