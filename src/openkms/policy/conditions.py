"""The `Condition` block of a policy statement: the subset OpenKMS evaluates, and the request facts.

A block is `{Operator: {Key: value | [values]}}`. Every operator of a block must hold, and within an
operator every key; a key holds when any of its values matches. A key the request does not carry
makes a positive operator false and a negated operator (`StringNotEquals`, `NotIpAddress`, ...) true.

Keys (case-insensitive): `acs:SourceIp` (IP operators only), `acs:SecureTransport` (`Bool`),
`acs:CurrentTime` (date operators), `acs:ResourceTag/<key>` (the key's tags) and
`acs:RequestTag/<key>` (tags the request sets), the tag keys with string operators. Anything else is
refused when the policy is written, never silently ignored when it is evaluated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from openkms.errors import MalformedPolicy
from openkms.policy.patterns import matches

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What conditions may look at, gathered once per request."""

    current_time: float  # epoch seconds
    source_ip: str | None = None
    secure_transport: bool = False
    resource_tags: Mapping[str, str] = field(default_factory=dict)
    request_tags: Mapping[str, str] = field(default_factory=dict)


_STRING_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
}
_DATE_OPERATORS = {"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
                   "DateGreaterThanEquals"}  # fmt: skip
_IP_OPERATORS = {"IpAddress", "NotIpAddress"}
_BOOL_OPERATORS = {"Bool"}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "DateNotEquals", "NotIpAddress"}
OPERATORS = frozenset(_STRING_OPERATORS | _DATE_OPERATORS | _IP_OPERATORS | _BOOL_OPERATORS)

_SOURCE_IP = "acs:sourceip"
_SECURE_TRANSPORT = "acs:securetransport"
_CURRENT_TIME = "acs:currenttime"
_RESOURCE_TAG = "acs:resourcetag/"
_REQUEST_TAG = "acs:requesttag/"


@dataclass(frozen=True, slots=True)
class Condition:
    """One `Operator: {Key: values}` pair, with its values parsed for the operator."""

    operator: str
    key: str  # as written
    values: tuple[str, ...]
    networks: tuple[IpNetwork, ...] = ()
    moments: tuple[float, ...] = ()  # epoch seconds

    def holds(self, facts: RequestFacts) -> bool:
        actual = _fact(self.key, facts)
        if actual is None:
            return self.operator in _NEGATED
        if self.operator in _IP_OPERATORS:
            assert isinstance(actual, str)
            inside = _in_networks(actual, self.networks)
            return inside if self.operator == "IpAddress" else not inside
        if self.operator == "Bool":
            return any(actual is (value.lower() == "true") for value in self.values)
        if self.operator in _DATE_OPERATORS:
            assert isinstance(actual, float | int) and not isinstance(actual, bool)
            return _DATE_TESTS[self.operator](actual, self.moments)
        assert isinstance(actual, str)
        return _STRING_TESTS[self.operator](actual, self.values)


def parse_condition_block(block: object) -> tuple[Condition, ...]:
    """Parse a statement's `Condition` value; raise MalformedPolicy with the reason."""
    if not isinstance(block, dict):
        raise MalformedPolicy("Condition must be an object of operators.")
    conditions: list[Condition] = []
    for operator, entries in block.items():
        if operator not in OPERATORS:
            supported = ", ".join(sorted(OPERATORS))
            raise MalformedPolicy(
                f"Condition operator {operator!r} is not supported; use one of {supported}."
            )
        if not isinstance(entries, dict) or not entries:
            raise MalformedPolicy(f"Condition operator {operator} must map condition keys to values.")
        for key, raw in entries.items():
            conditions.append(_parse_one(operator, key, raw))
    return tuple(conditions)


def _parse_one(operator: str, key: object, raw: object) -> Condition:
    if not isinstance(key, str):
        raise MalformedPolicy("Condition keys must be strings.")
    values = _string_list(raw, f"Condition {operator} {key}")
    folded = key.lower()
    if folded == _SOURCE_IP:
        if operator not in _IP_OPERATORS:
            raise MalformedPolicy(f"{key} takes IpAddress or NotIpAddress, not {operator}.")
        try:
            networks = tuple(ipaddress.ip_network(value, strict=False) for value in values)
        except ValueError:
            raise MalformedPolicy(f"{key} values must be IP addresses or CIDR blocks.") from None
        return Condition(operator, key, values, networks=networks)
    if operator in _IP_OPERATORS:
        raise MalformedPolicy(f"{operator} applies to acs:SourceIp only, not {key}.")
    if folded == _SECURE_TRANSPORT:
        if operator != "Bool" or any(value.lower() not in ("true", "false") for value in values):
            raise MalformedPolicy(f"{key} takes Bool with true or false.")
        return Condition(operator, key, values)
    if operator == "Bool":
        raise MalformedPolicy(f"Bool applies to acs:SecureTransport only, not {key}.")
    if folded == _CURRENT_TIME:
        if operator not in _DATE_OPERATORS:
            raise MalformedPolicy(f"{key} takes a Date operator, not {operator}.")
        return Condition(operator, key, values, moments=tuple(_moment(key, value) for value in values))
    if operator in _DATE_OPERATORS:
        raise MalformedPolicy(f"{operator} applies to acs:CurrentTime only, not {key}.")
    if folded.startswith((_RESOURCE_TAG, _REQUEST_TAG)) and key.partition("/")[2]:
        return Condition(operator, key, values)
    raise MalformedPolicy(
        f"Condition key {key!r} is not supported; use acs:SourceIp, acs:SecureTransport, "
        "acs:CurrentTime, acs:ResourceTag/<key> or acs:RequestTag/<key>."
    )


def _string_list(raw: object, what: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str | bool) else raw
    if not isinstance(items, list) or not items:
        raise MalformedPolicy(f"{what} must be a string or a non-empty list of strings.")
    out: list[str] = []
    for item in items:
        text = ("true" if item else "false") if isinstance(item, bool) else item
        if not isinstance(text, str):
            raise MalformedPolicy(f"{what} must be a string or a non-empty list of strings.")
        out.append(text)
    return tuple(out)


def _moment(key: str, value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPolicy(f"{key} values must be ISO-8601 times such as 2026-01-01T00:00:00Z.") from None
    if moment.tzinfo is None:
        raise MalformedPolicy(f"{key} values must carry a time zone (a trailing Z for UTC).")
    return moment.timestamp()


def _fact(key: str, facts: RequestFacts) -> str | bool | float | None:
    folded = key.lower()
    if folded == _SOURCE_IP:
        return facts.source_ip
    if folded == _SECURE_TRANSPORT:
        return facts.secure_transport
    if folded == _CURRENT_TIME:
        return facts.current_time
    name = key.partition("/")[2]
    tags = facts.resource_tags if folded.startswith(_RESOURCE_TAG) else facts.request_tags
    return tags.get(name)


def _in_networks(address: str, networks: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == network.version and ip in network for network in networks)


_STRING_TESTS: dict[str, Callable[[str, tuple[str, ...]], bool]] = {
    "StringEquals": lambda actual, values: actual in values,
    "StringNotEquals": lambda actual, values: actual not in values,
    "StringEqualsIgnoreCase": lambda actual, values: actual.lower() in {v.lower() for v in values},
    "StringNotEqualsIgnoreCase": lambda actual, values: actual.lower() not in {v.lower() for v in values},
    "StringLike": lambda actual, values: any(matches(v, actual) for v in values),
    "StringNotLike": lambda actual, values: not any(matches(v, actual) for v in values),
}
_DATE_TESTS: dict[str, Callable[[float, tuple[float, ...]], bool]] = {
    "DateEquals": lambda actual, moments: actual in moments,
    "DateNotEquals": lambda actual, moments: actual not in moments,
    "DateLessThan": lambda actual, moments: any(actual < m for m in moments),
    "DateLessThanEquals": lambda actual, moments: any(actual <= m for m in moments),
    "DateGreaterThan": lambda actual, moments: any(actual > m for m in moments),
    "DateGreaterThanEquals": lambda actual, moments: any(actual >= m for m in moments),
}
