"""Parsing and validating policy documents: what is accepted, and every refusal names its reason."""

from __future__ import annotations

import json

import pytest

from openkms.errors import MalformedPolicy
from openkms.policy.document import SIZE_LIMIT, PolicyKind, parse_policy

IDENTITY = PolicyKind.IDENTITY
KEY = PolicyKind.KEY


def doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def when(condition: object) -> str:
    """An identity policy with one statement carrying `condition`."""
    return doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Condition": condition})


def test_a_key_policy_parses_with_its_statements() -> None:
    text = doc(
        {"Sid": "admins", "Effect": "Allow", "Principal": {"RAM": ["acs:ram::1234567890123456:user/alice"]},
         "Action": ["kms:List*", "kms:Describe*"], "Resource": ["*"]},
        {"Effect": "Deny", "Principal": {"RAM": "acs:ram::1234567890123456:*"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}},
    )  # fmt: skip
    policy = parse_policy(text, KEY)
    assert policy.text == text
    first, second = policy.statements
    assert (first.sid, first.effect, first.actions) == ("admins", "Allow", ("kms:List*", "kms:Describe*"))
    assert first.principals == ("acs:ram::1234567890123456:user/alice",)
    assert second.principals == ("acs:ram::1234567890123456:*",) and not second.allows
    assert second.conditions[0].operator == "NotIpAddress"


def test_a_single_statement_object_is_accepted() -> None:
    text = json.dumps({"Version": "1", "Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}})
    assert len(parse_policy(text, IDENTITY).statements) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"Version": "2", "Statement": []}', '"Version": "1"'),
        ('{"Version": "1", "Statement": []}', "non-empty Statement"),
        ('{"Version": "1", "Statement": [], "Extra": 1}', "unknown field(s): Extra"),
        ('{"Version": "1", "Version": "1", "Statement": []}', "repeats the field 'Version'"),
        (doc({"Effect": "Maybe", "Action": "kms:*", "Resource": "*"}), "Effect must be"),
        (doc({"Effect": "Allow", "Resource": "*"}), "Action must be"),
        (doc({"Effect": "Allow", "Action": [], "Resource": "*"}), "Action must be"),
        (doc({"Effect": "Allow", "Action": "Encrypt", "Resource": "*"}), "is not an action"),
        (doc({"Effect": "Allow", "Action": "kms:*", "Resource": "key/1"}), "is not * or an acs:"),
        (doc({"Effect": "Allow", "NotAction": "kms:*", "Resource": "*"}), "unsupported field(s): NotAction"),
        (doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"RAM": "*"}}),
         "names no Principal"),
        (doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Sid": 5}), "Sid must be"),
        (when({"NumericEquals": {"x": "1"}}),
         "operator 'NumericEquals' is not supported"),
        (when({"StringEquals": {"acs:UserAgent": "x"}}),
         "key 'acs:UserAgent' is not supported"),
        (when({"IpAddress": {"acs:SourceIp": "nope"}}),
         "IP addresses or CIDR"),
        (when({"StringEquals": {"acs:SourceIp": "1.2.3.4"}}),
         "takes IpAddress or NotIpAddress"),
        (when({"Bool": {"acs:SecureTransport": "yes"}}),
         "takes Bool with true or false"),
        (when({"DateLessThan": {"acs:CurrentTime": "tomorrow"}}),
         "ISO-8601"),
        (when({"DateLessThan": {"acs:CurrentTime": "2026-01-01T00:00:00"}}),
         "time zone"),
        (when({"StringEquals": {"acs:ResourceTag/": "x"}}),
         "is not supported"),
        (when([]), "Condition must be an object"),
    ],
)  # fmt: skip
def test_identity_policy_refusals_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(text, IDENTITY)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    ("principal", "reason"),
    [
        (None, '"Principal": {"RAM"'),
        ({"Service": ["x"]}, '"Principal": {"RAM"'),
        ({"RAM": ["alice"]}, "is not a principal"),
        ({"RAM": ["acs:ram::abc:user/alice"]}, "is not a principal"),
    ],
)
def test_key_policy_principals_are_checked(principal: object, reason: str) -> None:
    statement: dict[str, object] = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    if principal is not None:
        statement["Principal"] = principal
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(doc(statement), KEY)
    assert reason in caught.value.message


def test_size_limits() -> None:
    filler = "x" * SIZE_LIMIT[IDENTITY]
    statement = {"Effect": "Allow", "Action": "kms:*", "Resource": "acs:kms:*:*:key/" + filler}
    with pytest.raises(MalformedPolicy, match="longer than 6144"):
        parse_policy(doc(statement), IDENTITY)
    statement["Principal"] = {"RAM": ["acs:ram::1234567890123456:*"]}
    assert parse_policy(doc(statement), KEY).statements  # a key policy may be up to 32 KiB


def test_deep_nesting_is_refused_not_crashed() -> None:
    text = '{"Version": "1", "Statement": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(MalformedPolicy):
        parse_policy(text, KEY)


@pytest.mark.parametrize("principal", ["*", "acs:ram::*:*", "acs:ram::*:root", "acs:ram::*:user/app"])
def test_a_key_policy_allows_named_accounts_only(principal: str) -> None:
    allow = {"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": {"RAM": [principal]}}
    with pytest.raises(MalformedPolicy, match="names each account it grants"):
        parse_policy(doc(allow), KEY)
    deny = {**allow, "Effect": "Deny"}  # denying everyone is fine
    assert parse_policy(doc(deny), KEY).statements[0].principals == (principal,)
