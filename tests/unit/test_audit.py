"""The audit log (P11-P13): hash-chained JSON lines, group commit, fail closed, the verifier, the fakes."""

from __future__ import annotations

import asyncio
import errno
import fcntl
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
from openkms.audit.wal import DEFAULT_WAL_BYTES, Recovered, recover, recover_directory, ring_entries, wal_path
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
    "door",
    "resource",
    "dev_clock",
    "access_key_id",
    "nonce",
    "nonce_expires",
    "dry_run",
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


@pytest.mark.parametrize("ring", [True, False])
def test_concurrent_appends_share_fsyncs_and_form_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring: bool
) -> None:
    syncs = {"fsync": 0, "fdatasync": 0}
    real = {"fsync": os.fsync, "fdatasync": os.fdatasync}

    def counting(name: str) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            syncs[name] += 1
            real[name](fd)

        return sync

    path = tmp_path / "audit.jsonl"

    async def main() -> JsonlAuditSink:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=DEFAULT_WAL_BYTES if ring else 0)
        monkeypatch.setattr(os, "fsync", counting("fsync"))
        monkeypatch.setattr(os, "fdatasync", counting("fdatasync"))
        await asyncio.gather(*(sink.append(_event(number)) for number in range(1000)))
        monkeypatch.undo()
        await sink.aclose()
        return sink

    sink = asyncio.run(main())
    assert sink.appends == 1000
    assert 1 <= sink.batches < 1000
    if ring:  # one durable ring append per batch; the file itself is synced in the background
        assert syncs["fdatasync"] == sink.batches
        assert not wal_path(path).exists()  # a clean close removes the ring
    else:
        assert syncs["fsync"] == sink.batches
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


@pytest.mark.parametrize("ring", [True, False])
def test_a_failed_fsync_breaks_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring: bool) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async def main() -> JsonlAuditSink:
        sink = JsonlAuditSink(
            tmp_path / "audit.jsonl", fsync=True, wal_bytes=DEFAULT_WAL_BYTES if ring else 0
        )
        monkeypatch.setattr(os, "fsync", failing_fsync)
        monkeypatch.setattr(os, "fdatasync", failing_fsync)
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


# -- the write-ahead ring (audit/wal.py) ---------------------------------------------------------------


def _acknowledged(path: Path, count: int, *, wal_bytes: int, batch: int = 7) -> tuple[bytes, bytes]:
    """Append `count` events in batches (each awaited: acknowledged), then "crash": return the file's
    and the ring's bytes as they are, without closing the sink."""
    captured: dict[str, bytes] = {}

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=wal_bytes)
        for start in range(0, count, batch):
            await asyncio.gather(*(sink.append(_event(n)) for n in range(start, min(count, start + batch))))
        captured["log"] = path.read_bytes()
        captured["ring"] = wal_path(path).read_bytes()
        await sink.aclose()

    asyncio.run(main())
    return captured["log"], captured["ring"]


def _crashed_copy(directory: Path, log: bytes, ring: bytes, keep: int) -> Path:
    """The log as a crash may leave it: only its first `keep` bytes reached the disk."""
    directory.mkdir()
    path = directory / "audit.jsonl"
    path.write_bytes(log[:keep])
    wal_path(path).write_bytes(ring)
    return path


@pytest.mark.parametrize("keep", ["none", "half a line", "all but one line", "all"])
def test_recovery_restores_every_acknowledged_record_from_the_ring(tmp_path: Path, keep: str) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 40, wal_bytes=1 << 20)
    lines = log.splitlines(keepends=True)
    cut = {
        "none": 0,
        "half a line": len(b"".join(lines[:20])) + len(lines[20]) // 2,
        "all but one line": len(log) - len(lines[-1]),
        "all": len(log),
    }[keep]
    path = _crashed_copy(tmp_path / "crashed", log, ring, cut)

    found = recover_directory(path.parent)

    assert [(r.log, r.complete) for r in found] == [(path, True)]
    assert path.read_bytes() == log  # every acknowledged record, in order, byte for byte
    assert not wal_path(path).exists()
    assert verify_file(path).ok and verify_file(path).records == 41


def test_recovery_after_the_ring_wrapped(tmp_path: Path) -> None:
    # A ring of 4 KiB holds about five records: 60 records go around it many times. Before each wrap
    # the sink syncs the file, so what the ring no longer holds is already on disk.
    log, ring = _acknowledged(tmp_path / "live.jsonl", 60, wal_bytes=4096, batch=3)
    newest = list(ring_entries(ring))
    assert newest and b"".join(newest) == log[len(log) - len(b"".join(newest)) :]
    first_in_ring = log.index(newest[0])
    path = _crashed_copy(tmp_path / "crashed", log, ring, first_in_ring + 10)  # lost the ring's part

    assert recover(path) == Recovered(path, len(b"".join(newest).splitlines()), True)
    assert path.read_bytes() == log


def test_a_torn_ring_entry_is_ignored(tmp_path: Path) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 20, wal_bytes=1 << 20, batch=5)
    entries = list(ring_entries(ring))
    torn = bytearray(ring)
    last_start = len(b"".join(entries[:-1])) + 16 * (len(entries) - 1)
    torn[last_start + 16 + 3] ^= 0xFF  # the last batch's write was cut short: its checksum fails
    kept = log[: len(log) - len(entries[-1])]
    path = _crashed_copy(tmp_path / "crashed", log, bytes(torn), len(kept) - 5)

    result = recover(path)

    assert result is not None and result.complete
    assert path.read_bytes() == kept  # the unacknowledged batch is not invented back
    assert verify_file(path).ok


def test_a_ring_whose_writer_is_alive_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=1 << 16)
        await sink.append(_event(1))
        assert recover(path) is None and recover_directory(tmp_path) == []
        assert wal_path(path).exists()
        with pytest.raises(AuditUnavailable):
            JsonlAuditSink(path, fsync=True, wal_bytes=1 << 16)  # a second writer of the same log
        await sink.aclose()

    asyncio.run(main())
    assert not wal_path(path).exists()


def test_a_sink_reopening_a_crashed_log_recovers_it_first(tmp_path: Path) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 10, wal_bytes=1 << 16)
    path = _crashed_copy(tmp_path / "crashed", log, ring, len(log) // 3)

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=1 << 16)
        await sink.append(_event(99))
        await sink.aclose()

    asyncio.run(main())
    records = _records(path)
    assert [r["request_id"] for r in records[1:11]] == [_event(n).request_id for n in range(10)]
    assert records[-1]["request_id"] == _event(99).request_id
    assert verify_file(path).ok


def test_a_ring_that_does_not_continue_its_log_is_kept(tmp_path: Path) -> None:
    _, ring = _acknowledged(tmp_path / "live.jsonl", 10, wal_bytes=1 << 16)
    other_log, _ = _acknowledged(tmp_path / "other.jsonl", 3, wal_bytes=1 << 16)
    path = _crashed_copy(tmp_path / "crashed", other_log, ring, len(other_log))  # a foreign ring

    result = recover(path)

    assert result is not None and not result.complete
    assert wal_path(path).exists()
    assert path.read_bytes() == other_log


def test_recovery_is_idempotent(tmp_path: Path) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 15, wal_bytes=1 << 16)
    path = _crashed_copy(tmp_path / "crashed", log, ring, len(log) // 2 + 3)
    saved_ring = wal_path(path).read_bytes()

    assert recover(path) == Recovered(path, 8, True)
    wal_path(path).write_bytes(saved_ring)  # as if recovery had died before removing the ring

    assert recover(path) == Recovered(path, 0, True)
    assert path.read_bytes() == log


def test_a_log_that_lost_records_the_ring_still_holds_keeps_its_ring(tmp_path: Path) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 12, wal_bytes=1 << 16)
    lines = log.splitlines(keepends=True)
    damaged = b"".join([*lines[:5], b"\0" * len(lines[5]), *lines[6:]])  # a page the disk lost
    path = _crashed_copy(tmp_path / "crashed", damaged, ring, len(damaged))

    result = recover(path)

    assert result == Recovered(path, 0, False)
    assert wal_path(path).exists()


def test_a_failed_sync_before_the_ring_wraps_acknowledges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    failing = {"on": False}
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if failing["on"]:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=True, wal_bytes=4096)
        monkeypatch.setattr(os, "fsync", fsync)
        number = 0
        while sink._wal is not None and sink._wal._lap == 1:  # fill the first lap
            await sink.append(_event(number))
            number += 1
        failing["on"] = True
        outcomes = await asyncio.gather(
            *(sink.append(_event(n)) for n in range(number, number + 40)), return_exceptions=True
        )
        assert any(isinstance(outcome, AuditUnavailable) for outcome in outcomes)
        with pytest.raises(AuditUnavailable):
            sink.check()
        failing["on"] = False
        await sink.aclose()

    asyncio.run(main())
    assert wal_path(path).exists()  # broken: the ring stays for recovery


def test_recovery_leaves_a_ring_that_was_replaced_while_it_waited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 5, wal_bytes=1 << 16)
    path = _crashed_copy(tmp_path / "crashed", log, ring, len(log))
    real_flock = fcntl.flock

    def flock_after_a_swap(fd: int, operation: int) -> None:
        replacement = wal_path(path).with_name("replacement")
        replacement.write_bytes(b"someone else's ring")
        os.replace(replacement, wal_path(path))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_swap)
    assert recover(path) is None
    monkeypatch.undo()
    assert wal_path(path).read_bytes() == b"someone else's ring"


def test_serve_refuses_to_start_on_a_ring_it_cannot_apply(tmp_path: Path) -> None:
    from rich.console import Console

    from openkms.cli.prepare import prepare_audit_logs
    from openkms.config import Settings

    _, ring = _acknowledged(tmp_path / "live.jsonl", 10, wal_bytes=1 << 16)
    other_log, _ = _acknowledged(tmp_path / "other.jsonl", 3, wal_bytes=1 << 16)
    data_dir = tmp_path / "data"
    (data_dir / "audit").mkdir(parents=True)
    (data_dir / "audit" / "audit.jsonl").write_bytes(other_log)
    wal_path(data_dir / "audit" / "audit.jsonl").write_bytes(ring)

    with open(os.devnull, "w") as quiet, pytest.raises(AuditUnavailable, match="could not be applied"):
        prepare_audit_logs(Settings(data_dir=data_dir), Console(file=quiet))


def test_a_batch_larger_than_the_ring_goes_through_it_in_whole_lines(tmp_path: Path) -> None:
    log, ring = _acknowledged(tmp_path / "live.jsonl", 60, wal_bytes=2048, batch=30)  # ~20 KB batches
    assert all(entry.endswith(b"\n") for entry in ring_entries(ring))
    path = _crashed_copy(tmp_path / "crashed", log, ring, len(log) - 100)

    assert recover(path) is not None
    assert path.read_bytes() == log


def test_a_record_larger_than_the_ring_breaks_the_sink(tmp_path: Path) -> None:
    async def main() -> None:
        sink = JsonlAuditSink(tmp_path / "audit.jsonl", fsync=True, wal_bytes=400)
        with pytest.raises(AuditUnavailable):
            await sink.append(_event(1, result="Denied", reason="x" * 250))
        with pytest.raises(AuditUnavailable):
            sink.check()
        await sink.aclose()

    asyncio.run(main())


def test_an_unapplied_ring_leaves_the_log_untouched(tmp_path: Path) -> None:
    _, ring = _acknowledged(tmp_path / "live.jsonl", 10, wal_bytes=1 << 16)
    other_log, _ = _acknowledged(tmp_path / "other.jsonl", 3, wal_bytes=1 << 16)
    torn = other_log + b'{"seq":'  # a partial last line too
    path = _crashed_copy(tmp_path / "crashed", torn, ring, len(torn))

    assert recover(path) == Recovered(path, 0, False)
    assert path.read_bytes() == torn


def test_an_abandoned_ring_under_construction_is_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / ".audit-x.jsonl.wal.123.abcd"
    abandoned.write_bytes(bytes(4096))
    assert recover_directory(tmp_path) == []
    assert not abandoned.exists()


def test_audit_time_far_from_now() -> None:
    moment = datetime(5000, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    assert audit_time(moment) == "5000-01-01T00:00:00.999Z"
    assert audit_time(moment.replace(second=1, microsecond=0)) == "5000-01-01T00:00:01.000Z"
