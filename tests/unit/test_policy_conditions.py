"""Condition operators over the request facts, including keys the request does not carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openkms.policy.conditions import RequestFacts, parse_condition_block

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FACTS = RequestFacts(
    current_time=NOW.timestamp(),
    source_ip="10.1.2.3",
    secure_transport=True,
    resource_tags={"env": "prod", "team": "Payments"},
    request_tags={"owner": "alice"},
)


def holds(block: dict[str, object], facts: RequestFacts = FACTS) -> bool:
    return all(condition.holds(facts) for condition in parse_condition_block(block))


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.1"]}}, True),
        ({"IpAddress": {"acs:SourceIp": "192.168.0.0/16"}}, False),
        ({"NotIpAddress": {"acs:SourceIp": "192.168.0.0/16"}}, True),
        ({"IpAddress": {"acs:sourceip": "2001:db8::/32"}}, False),
        ({"Bool": {"acs:SecureTransport": "true"}}, True),
        ({"Bool": {"acs:SecureTransport": False}}, False),
        ({"DateLessThan": {"acs:CurrentTime": "2026-11-28T12:00:01Z"}}, True),
        ({"DateLessThan": {"acs:CurrentTime": "2026-11-28T12:00:00Z"}}, False),
        ({"DateLessThanEquals": {"acs:CurrentTime": "2026-11-28T20:00:00+08:00"}}, True),
        ({"DateGreaterThan": {"acs:CurrentTime": "2026-01-01T00:00:00Z"}}, True),
        ({"StringEquals": {"acs:ResourceTag/env": ["dev", "prod"]}}, True),
        ({"StringEquals": {"acs:ResourceTag/team": "payments"}}, False),
        ({"StringEqualsIgnoreCase": {"acs:ResourceTag/team": "payments"}}, True),
        ({"StringLike": {"acs:ResourceTag/team": "Pay*"}}, True),
        ({"StringNotLike": {"acs:ResourceTag/team": "Pay*"}}, False),
        ({"StringEquals": {"acs:RequestTag/owner": "alice"}}, True),
        # A key the request does not carry: positive operators fail, negated ones hold.
        ({"StringEquals": {"acs:ResourceTag/missing": "x"}}, False),
        ({"StringNotEquals": {"acs:ResourceTag/missing": "x"}}, True),
        # Every operator and every key of a block must hold.
        ({"StringEquals": {"acs:ResourceTag/env": "prod", "acs:ResourceTag/team": "Ops"}}, False),
        ({"StringEquals": {"acs:ResourceTag/env": "prod"}, "Bool": {"acs:SecureTransport": "true"}}, True),
    ],
)
def test_operators(block: dict[str, object], expected: bool) -> None:
    assert holds(block) is expected


def test_no_source_ip_fails_ip_address_and_passes_not_ip_address() -> None:
    facts = RequestFacts(current_time=NOW.timestamp())
    assert not holds({"IpAddress": {"acs:SourceIp": "0.0.0.0/0"}}, facts)
    assert holds({"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}}, facts)
