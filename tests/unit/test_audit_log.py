"""The audit log as the console reads it (`service/audit_log.py`): only the caller's account, newest
first across workers' files, filtered, paged, bounded; its verification as `openkms audit verify`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from openkms.audit import JsonlAuditSink
from openkms.audit.event import AuditEvent
from openkms.errors import AccessDenied, InvalidArgument
from openkms.policy.document import PolicyKind, parse_policy
from openkms.service.audit_log import AuditLogService, AuditQuery
from openkms.service.context import Principal, RequestContext
from openkms.testing.clock import FrozenClock
from openkms.types import AccountId, RegionId

MINE = AccountId("1111111111111111")
OTHER = AccountId("2222222222222222")


def _event(number: int, account: str, *, action: str = "Encrypt", result: str = "Success") -> AuditEvent:
    return AuditEvent(
        request_id=str(uuid.uuid4()),
        time=f"2024-05-01T12:00:{number // 1000:02d}.{number % 1000:03d}Z",
        principal=f"acs:ram::{account}:{'root' if number % 2 else 'user/alice'}",
        account_id=account,
        action=action,
        key_id=f"key-{number % 3}",
        key_version_id=None,
        result=result,
        http_status=200 if result == "Success" else 403,
        source_ip="127.0.0.1",
        region="cn-hangzhou",
        reason=None,
        door="console" if number % 5 == 0 else "rpc",
    )


def _write(path: Path, events: list[AuditEvent]) -> None:
    async def main() -> None:
        sink = JsonlAuditSink(path, fsync=False)
        for event in events:
            await sink.append(event)
        await sink.aclose()

    asyncio.run(main())


def _ctx(account: str = MINE, name: str = "root", policy: str | None = None) -> RequestContext:
    policies = () if policy is None else (parse_policy(policy, PolicyKind.IDENTITY),)
    return RequestContext(
        str(uuid.uuid4()), Principal(AccountId(account), name, policies), RegionId("cn-hangzhou")
    )


def _service(directory: Path, **limits: int) -> AuditLogService:
    return AuditLogService(directory, None, lambda: None, FrozenClock(), **limits)  # type: ignore[arg-type]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    # Two workers' files, interleaved in time; every third record is another account's.
    directory = tmp_path / "audit"
    directory.mkdir()
    first = [_event(n, OTHER if n % 3 == 0 else MINE) for n in range(0, 60, 2)]
    second = [
        _event(n, OTHER if n % 3 == 0 else MINE, action="Decrypt", result="Forbidden.KeyNotFound")
        for n in range(1, 60, 2)
    ]
    _write(directory / "audit-a.jsonl", first)
    _write(directory / "audit-b.jsonl", second)
    return directory


def test_a_lookup_shows_only_the_callers_account_newest_first_across_files(log_dir: Path) -> None:
    page = _service(log_dir).lookup(_ctx(), AuditQuery(page_size=100)).value
    times = [record.time for record in page.records]
    assert len(page.records) == 40 and times == sorted(times, reverse=True)
    assert all(MINE in record.principal for record in page.records)
    assert {record.action for record in page.records} == {"Encrypt", "Decrypt"}
    assert not page.has_more and not page.exhausted

    theirs = _service(log_dir).lookup(_ctx(OTHER), AuditQuery(page_size=100)).value
    assert len(theirs.records) == 20 and all(OTHER in r.principal for r in theirs.records)


def test_filters_by_key_action_principal_and_result(log_dir: Path) -> None:
    service = _service(log_dir)

    def found(**given: str) -> list[str]:
        return [
            r.request_id for r in service.lookup(_ctx(), AuditQuery(page_size=100, **given)).value.records
        ]

    everything = service.lookup(_ctx(), AuditQuery(page_size=100)).value.records
    assert len(found(key_id="key-1")) == sum(r.key_id == "key-1" for r in everything) > 0
    assert len(found(action="decrypt")) == sum(r.action == "Decrypt" for r in everything) == 20
    assert len(found(principal="user/alice")) == sum("user/alice" in r.principal for r in everything) > 0
    assert len(found(result="Success")) == 20 and len(found(result="Failure")) == 20
    assert len(found(result="Forbidden.KeyNotFound")) == 20
    assert found(action="Encrypt", result="Failure") == []


def test_pages_follow_each_other_without_gaps(log_dir: Path) -> None:
    service = _service(log_dir)
    pages = [service.lookup(_ctx(), AuditQuery(page=n, page_size=15)).value for n in (1, 2, 3)]
    assert [len(p.records) for p in pages] == [15, 15, 10]
    assert [p.has_more for p in pages] == [True, True, False]
    everything = service.lookup(_ctx(), AuditQuery(page_size=100)).value.records
    assert [r for p in pages for r in p.records] == list(everything)


def test_a_lookup_reads_at_most_its_bound_of_lines(log_dir: Path) -> None:
    page = _service(log_dir, scan_records=30).lookup(_ctx(), AuditQuery(page_size=100)).value
    assert page.exhausted and page.scanned == 30
    # The newest 30 lines of both files together: the bound falls on the oldest, whichever file.
    assert 0 < len(page.records) < 30 and min(r.time for r in page.records) >= "2024-05-01T12:00:00.030Z"


def test_a_partial_last_line_is_left_out(log_dir: Path) -> None:
    with (log_dir / "audit-a.jsonl").open("ab") as file:
        file.write(b'{"account_id":"1111111111111111","action":"Half')
    page = _service(log_dir).lookup(_ctx(), AuditQuery(page_size=100)).value
    assert len(page.records) == 40


def test_a_ram_user_needs_lookup_events(log_dir: Path) -> None:
    service = _service(log_dir)
    with pytest.raises(AccessDenied) as denied:
        service.lookup(_ctx(name="user/bob"), AuditQuery())
    assert denied.value.detail is not None and denied.value.detail["AuthAction"] == "actiontrail:LookupEvents"
    with pytest.raises(AccessDenied):
        service.verification(_ctx(name="user/bob"))
    allowed = (
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"actiontrail:LookupEvents","Resource":"*"}]}'
    )
    assert (
        len(service.lookup(_ctx(name="user/bob", policy=allowed), AuditQuery(page_size=100)).value.records)
        == 40
    )


def test_queries_out_of_bounds_are_refused(log_dir: Path) -> None:
    service = _service(log_dir)
    for query in (AuditQuery(page=0), AuditQuery(page_size=101), AuditQuery(action="x" * 257)):
        with pytest.raises(InvalidArgument):
            service.lookup(_ctx(), query)


def test_verification_reports_ok_then_the_broken_line(log_dir: Path) -> None:
    clock = FrozenClock()
    service = AuditLogService(log_dir, None, lambda: None, clock, verify_interval=30)
    verified = service.verification(_ctx()).value
    assert verified.ok is True and verified.files == 2 and verified.records == 62  # + each file's opening

    path = log_dir / "audit-b.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"Decrypt", b"Encrypt")
    path.write_bytes(b"".join(lines))
    assert service.verification(_ctx()).value.ok is True  # the last result, still recent
    clock.advance(timedelta(seconds=31))
    broken = service.verification(_ctx()).value
    assert broken.ok is False
    assert [(b.file, b.line) for b in broken.broken] == [("audit-b.jsonl", 5)]
    assert "edited" in broken.broken[0].reason


def test_verification_of_a_log_too_large_is_left_to_the_cli(log_dir: Path) -> None:
    verified = _service(log_dir, verify_bytes=100).verification(_ctx()).value
    assert verified.ok is None and "openkms audit verify" in verified.notes[0]
