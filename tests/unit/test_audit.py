"""The audit log (P11-P13): hash-chained JSON lines, group commit, fail closed, the verifier, the fakes."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.audit import (
    GENESIS_ACTION,
    AuditEvent,
    AuditSink,
    JsonlAuditSink,
    audit_time,
    verify_directory,
    verify_file,
)
from openkms.audit.sink import ZERO_HASH, canonical_json, record_hash
from openkms.errors import AuditUnavailable
from openkms.testing.audit import FailingAuditSink, MemoryAuditSink

EVENT_FIELDS = {
    "request_id",
    "time",
    "principal",
    "account_id",
    "action",
    "key_id",
    "key_version_id",
    "result",
    "http_status",
    "source_ip",
    "region",
    "reason",
    "dev_clock",
    "access_key_id",
    "nonce",
    "nonce_expires",
}


def _event(number: int = 0, *, result: str = "Success", reason: str | None = None) -> AuditEvent:
    return AuditEvent(
        request_id=f"0b5c1c1e-6a51-4c35-9b0c-{number:012d}",
        time="2024-05-01T12:00:00.123Z",
        principal="acs:ram::1234567890123456:root",
        account_id="1234567890123456",
        action="Encrypt",
        key_id="key-hzz65f1c9d1b8o2kf1xyz",
        key_version_id="bd4b5e3c-0a6a-4b2e-9f3a-0123456789ab",
        result=result,
        http_status=200 if result == "Success" else 404,
        source_ip="127.0.0.1",
        region="cn-hangzhou",
        reason=reason,
    )


def _write(path: Path, count: int, *, fsync: bool = False) -> None:
    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=fsync)
        for number in range(count):
            await sink.append(_event(number))
        await sink.aclose()

    asyncio.run(main())


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_chain_of_a_written_file_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 5, fsync=True)

    assert verify_file(path) == verify_file(path)
    report = verify_file(path)
    assert (report.ok, report.records, report.first_bad_line, report.reason) == (True, 6, None, None)
    records = _records(path)
    genesis, first = records[0], records[1]
    assert genesis["action"] == GENESIS_ACTION and genesis["pid"] == os.getpid()
    assert genesis["seq"] == 0 and genesis["prev"] == ZERO_HASH
    assert set(first) == EVENT_FIELDS | {"seq", "prev", "hash"}
    assert first["prev"] == genesis["hash"] and first["seq"] == 1
    assert all(record["hash"] == record_hash(record) for record in records)  # type: ignore[arg-type]
    lines = path.read_bytes().splitlines()
    assert lines[1] == json.dumps(first, sort_keys=True, separators=(",", ":")).encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


_texts = st.one_of(st.none(), st.text(max_size=30), st.just(',"http_status":200,"hash":"x"'))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_texts, _texts, _texts), min_size=1, max_size=5))
def test_event_lines_are_the_canonical_json_of_their_records(
    tmp_path_factory: pytest.TempPathFactory, values: list[tuple[str | None, str | None, str | None]]
) -> None:
    path = tmp_path_factory.mktemp("lines") / "audit.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        for number, (principal, reason, key_id) in enumerate(values):
            event = _event(number, result="Denied", reason=reason)
            await sink.append(event._replace(principal=principal or "p", key_id=key_id))
        await sink.aclose()

    asyncio.run(main())
    for line in path.read_bytes().splitlines():
        record = json.loads(line)
        assert line == canonical_json(record)
        assert record["hash"] == record_hash(record)
    assert verify_file(path).ok


def test_a_reopened_file_continues_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    _write(path, 3)

    report = verify_file(path)
    assert report.ok and report.records == 7
    records = _records(path)
    assert [r["seq"] for r in records] == list(range(7))
    assert [r["action"] for r in records].count(GENESIS_ACTION) == 2


def test_a_file_ending_in_a_partial_record_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 2)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(AuditUnavailable):
        JsonlAuditSink(path)


def _edit(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"Encrypt"', b'"Decrypt"')
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[2]
    return lines


def _reorder(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _insert(lines: list[bytes]) -> list[bytes]:
    lines.insert(2, lines[5])
    return lines


def _reformat(lines: list[bytes]) -> list[bytes]:
    lines[2] = json.dumps(json.loads(lines[2]), sort_keys=True).encode()  # same content, spaces added
    return lines


@pytest.mark.parametrize(
    ("tamper", "bad_line", "words"),
    [
        (_edit, 3, "edited"),
        (_delete, 3, "seq"),
        (_reorder, 3, "seq"),
        (_insert, 3, "seq"),
        (_reformat, 3, "canonical"),
    ],
)
def test_tampering_is_detected_at_its_line(
    tmp_path: Path, tamper: Callable[[list[bytes]], list[bytes]], bad_line: int, words: str
) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 6)
    path.write_bytes(b"".join(line + b"\n" for line in tamper(path.read_bytes().splitlines())))

    report = verify_file(path)
    assert not report.ok
    assert report.first_bad_line == bad_line
    assert report.records == bad_line - 1
    assert report.reason is not None and words in report.reason


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    lines = path.read_bytes().splitlines()
    record = json.loads(lines[2])
    record["result"] = "Forbidden.KeyNotFound"
    record["hash"] = record_hash(record)
    lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"".join(line + b"\n" for line in lines))

    report = verify_file(path)
    assert (report.ok, report.first_bad_line) == (False, 4)
    assert report.reason is not None and "prev" in report.reason


def test_a_truncated_last_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 3)
    path.write_bytes(path.read_bytes()[:-20])

    report = verify_file(path)
    assert (report.ok, report.records, report.first_bad_line) == (False, 3, 4)
    assert report.reason is not None and "truncated" in report.reason


def test_verify_directory_reports_every_file(tmp_path: Path) -> None:
    _write(tmp_path / "a.jsonl", 2)
    _write(tmp_path / "b.jsonl", 2)
    (tmp_path / "b.jsonl").write_bytes((tmp_path / "b.jsonl").read_bytes() + b"{}\n")
    (tmp_path / "notes.txt").write_text("not an audit file")

    reports = verify_directory(tmp_path)
    assert [(path.name, report.ok, report.first_bad_line) for path, report in reports] == [
        ("a.jsonl", True, None),
        ("b.jsonl", False, 4),
    ]


def test_an_empty_file_verifies(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert verify_file(tmp_path / "empty.jsonl").ok


def test_concurrent_appends_share_fsyncs_and_form_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    path = tmp_path / "audit.jsonl"

    async def main() -> JsonlAuditSink:
        sink = JsonlAuditSink(path, fsync=True)
        await asyncio.gather(*(sink.append(_event(number)) for number in range(1000)))
        await sink.aclose()
        return sink

    sink = asyncio.run(main())
    assert sink.appends == 1000
    assert 1 <= sink.batches < 1000
    assert syncs == sink.batches + 1  # plus one for the new file's directory entry
    report = verify_file(path)
    assert report.ok and report.records == 1001
    request_ids = {r["request_id"] for r in _records(path)[1:]}
    assert request_ids == {_event(number).request_id for number in range(1000)}


def test_the_sink_runs_on_uvloop(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True)
        await asyncio.gather(*(sink.append(_event(number)) for number in range(200)))
        await sink.aclose()

    uvloop.run(main())
    assert verify_file(path).records == 201


def test_the_sink_follows_the_running_loop(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path, fsync=False)  # built outside any loop, as an app factory does
    asyncio.run(sink.append(_event(1)))
    asyncio.run(sink.append(_event(2)))
    asyncio.run(sink.aclose())
    report = verify_file(path)
    assert report.ok and report.records == 3


@pytest.mark.parametrize("yields", range(6))
def test_a_loop_that_ends_mid_batch_loses_no_line(tmp_path: Path, yields: int) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path, fsync=True)

    async def abandon() -> None:
        asyncio.create_task(sink.append(_event(1)))  # noqa: RUF006 - left running on purpose
        for _ in range(yields):
            await asyncio.sleep(0)

    asyncio.run(abandon())  # cancels the append and the flusher wherever they are
    asyncio.run(sink.append(_event(2)))
    asyncio.run(sink.aclose())
    report = verify_file(path)
    assert report.ok and report.records == 3


def test_a_batch_queued_behind_a_slow_write_survives_its_loop_ending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.2)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path, fsync=True)

    async def abandon(number: int) -> None:
        asyncio.create_task(sink.append(_event(number)))  # noqa: RUF006 - left running on purpose
        await asyncio.sleep(0.05)  # the flusher has handed its batch to the writer thread

    asyncio.run(abandon(1))  # its batch is being written (slowly) when the loop ends
    asyncio.run(abandon(2))  # its batch waits behind the first one when this loop ends
    asyncio.run(sink.append(_event(3)))
    asyncio.run(sink.aclose())
    report = verify_file(path)
    assert report.ok and report.records == 4


def test_a_cancelled_append_still_leaves_a_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True)
        cancelled = asyncio.create_task(sink.append(_event(1)))
        await asyncio.sleep(0)
        cancelled.cancel()
        await sink.append(_event(2))
        await sink.aclose()

    asyncio.run(main())
    report = verify_file(path)
    assert report.ok and report.records == 3


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_fails_closed() -> None:
    async def main() -> None:
        sink = JsonlAuditSink(Path("/dev/full"), fsync=True)
        sink.check()  # nothing known to be wrong before the first write
        outcomes = await asyncio.gather(*(sink.append(_event(n)) for n in range(20)), return_exceptions=True)
        assert all(isinstance(outcome, AuditUnavailable) for outcome in outcomes)
        with pytest.raises(AuditUnavailable):
            sink.check()
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(21))
        assert sink.failure is not None and "No space left" in sink.failure
        await sink.aclose()

    asyncio.run(main())


def test_a_failed_fsync_breaks_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async def main() -> JsonlAuditSink:
        sink = JsonlAuditSink(tmp_path / "audit.jsonl", fsync=True)
        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(1))
        monkeypatch.undo()
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(2))  # stays broken: what the kernel lost after EIO is unknown
        await sink.aclose()
        return sink

    sink = asyncio.run(main())
    with pytest.raises(AuditUnavailable):
        sink.check()


def test_a_partial_write_breaks_the_sink_and_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    real_write = os.write

    def half_write(fd: int, data: bytes | bytearray | memoryview) -> int:
        return real_write(fd, bytes(data)[: len(data) // 2])

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        await sink.append(_event(1))
        monkeypatch.setattr(os, "write", half_write)
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(2))
        monkeypatch.undo()
        with pytest.raises(AuditUnavailable):
            sink.check()
        await sink.aclose()

    asyncio.run(main())
    report = verify_file(path)
    assert report.ok and report.records == 2  # the torn record was removed, not left behind


def test_a_closed_sink_refuses_appends(tmp_path: Path) -> None:
    async def main() -> None:
        sink = JsonlAuditSink(tmp_path / "audit.jsonl")
        await sink.aclose()
        await sink.aclose()
        with pytest.raises(AuditUnavailable):
            sink.check()
        with pytest.raises(AuditUnavailable):
            await sink.append(_event())

    asyncio.run(main())
    assert verify_file(tmp_path / "audit.jsonl").records == 1  # the genesis record is still written


def test_an_unopenable_path_is_audit_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailable):
        JsonlAuditSink(tmp_path / "missing-directory" / "audit.jsonl")


def test_audit_time_is_utc_with_milliseconds() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert audit_time(moment) == "2024-05-01T12:00:00.123Z"


@given(st.datetimes(timezones=st.timezones()))
def test_audit_time_matches_isoformat(moment: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert audit_time(moment) == expected


def test_the_memory_sink_keeps_events_in_order() -> None:
    sink = MemoryAuditSink()
    typed: AuditSink = sink

    async def main() -> None:
        typed.check()
        await typed.append(_event(1))
        await typed.append(_event(2, result="Forbidden.KeyNotFound", reason="no such key"))
        await typed.aclose()
        with pytest.raises(AuditUnavailable):
            await typed.append(_event(3))

    asyncio.run(main())
    assert [event.request_id for event in sink.events] == [_event(1).request_id, _event(2).request_id]


def test_the_failing_sink_always_fails() -> None:
    sink = FailingAuditSink()
    typed: AuditSink = sink

    async def main() -> None:
        with pytest.raises(AuditUnavailable):
            typed.check()
        with pytest.raises(AuditUnavailable):
            await typed.append(_event(1))
        await typed.aclose()

    asyncio.run(main())
    assert sink.attempts == [_event(1)]


def test_write_through_mode_writes_before_append_returns_and_syncs_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "through.jsonl"
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    monkeypatch.setattr(JsonlAuditSink, "SYNC_INTERVAL", 0.05)

    async def scenario() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        await sink.append(_event(1))
        # Written to the file before append returned, without waiting for any fsync.
        assert [r["action"] for r in _records(path)][-1] == _event(1).action
        before = len(synced)
        await asyncio.sleep(0.3)
        assert len(synced) > before
        await sink.aclose()

    asyncio.run(scenario())
    assert verify_file(path).ok


def test_write_through_mode_fails_closed(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")

    async def scenario() -> None:
        sink = JsonlAuditSink(Path("/dev/full"), fsync=False)
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(1))
        with pytest.raises(AuditUnavailable):
            sink.check()
        await sink.aclose()

    asyncio.run(scenario())
