"""Fuzzing the policy parser and evaluator (policy/document.py, conditions.py, engine.py, patterns.py,
key_policy.py, trust.py): documents built from the grammar, then mutated, either parse or are refused
with MalformedPolicyDocument; a parsed document is evaluated against any request without an error or a
hang, however adversarial its wildcards."""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from openkms.errors import MalformedPolicy
from openkms.policy.conditions import OPERATORS, RequestFacts
from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy
from openkms.policy.engine import AccessRequest, Decision, evaluate
from openkms.policy.key_policy import key_policy_document, other_accounts
from openkms.policy.patterns import action_matches, matches
from openkms.policy.trust import trusted
from tests.fuzz.strategies import NASTY, deep_json, dumps, json_values, mutated_json, mutated_text, text
from tests.fuzz.support import assert_documented_refusal, fuzz_settings, no_hang, refused_or_value

ACCOUNT = "1234567890"
OTHER = "9876543210"
# Wildcards that make a backtracking matcher take minutes against a long run of one character.
ADVERSARIAL = ("*a" * 12 + "b", "*?" * 20 + "b", "a*a*a*a*a*a*a*a*a*a*", "*:*:*:*:*:*:*:*:*:*x")

patterns = st.one_of(
    st.sampled_from(["*", "?", "**", "*?*", "", "kms:*", "kms:List*", "kms:?ncrypt", *ADVERSARIAL]),
    st.text("*?ab:/-", max_size=12),
    text,
)
actions = st.one_of(
    st.sampled_from(["kms:*", "kms:Encrypt", "kms:List*", "*", "sts:AssumeRole", "KMS:encrypt", "kms:"]),
    patterns,
)
resources = st.one_of(
    st.sampled_from(["*", "acs:kms:*:*:key/*", f"acs:kms:cn-hangzhou:{ACCOUNT}:key/key-?*", "acs:*"]),
    patterns.map(lambda p: "acs:" + p),
)
principals = st.one_of(
    st.sampled_from(
        [f"acs:ram::{ACCOUNT}:*", f"acs:ram::{ACCOUNT}:root", f"acs:ram::{OTHER}:user/alice", "*"]
        + [f"acs:ram::{ACCOUNT}:user/{p}" for p in ADVERSARIAL]
    ),
    st.text("acs:ram:0123456789*?/user-", max_size=30),
)
condition_keys = {
    "IpAddress": ["acs:SourceIp"],
    "NotIpAddress": ["acs:SourceIp", "ACS:SOURCEIP"],
    "Bool": ["acs:SecureTransport"],
}
wild_values = st.one_of(
    st.sampled_from(["10.0.0.0/8", "::1", "true", True, "2026-01-01T00:00:00Z", *ADVERSARIAL]), text
)
valid_values = {
    "ip": st.sampled_from(["10.0.0.0/8", "::1", "0.0.0.0/0", "fe80::/10", "192.168.1.1", "10.1.2.3/33"]),
    "bool": st.sampled_from(["true", "false", "TRUE", True, False]),
    "date": st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-01-01T00:00+08:00",
        ]
    ),
    "string": st.one_of(st.sampled_from(ADVERSARIAL), st.text("ab*?", max_size=8), text),
}


@st.composite
def condition_block(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for operator in draw(st.lists(st.sampled_from(sorted(OPERATORS)), min_size=1, max_size=3, unique=True)):
        if operator in condition_keys:
            key = draw(st.sampled_from(condition_keys[operator]))
            kind = "ip" if "Ip" in operator else "bool"
        elif operator.startswith("Date"):
            key, kind = "acs:CurrentTime", "date"
        else:
            key = draw(st.sampled_from(["acs:ResourceTag/", "acs:RequestTag/"])) + draw(
                st.sampled_from(["team", "env", "k"])
            )
            kind = "string"
        value = wild_values if wild else valid_values[kind]
        block[operator] = {key: draw(st.one_of(value, st.lists(value, min_size=1, max_size=3)))}
    return block


def one_or_list(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(items, st.lists(items, min_size=1, max_size=4))


valid_actions = st.one_of(
    st.sampled_from(["kms:*", "kms:Encrypt", "kms:List*", "*", "sts:AssumeRole", "KMS:encrypt"]),
    st.text("ab*?", min_size=1, max_size=12).map(lambda p: "kms:" + p),
)
valid_principals = st.one_of(
    st.sampled_from([f"acs:ram::{ACCOUNT}:*", f"acs:ram::{ACCOUNT}:root", f"acs:ram::{OTHER}:user/alice"]),
    st.sampled_from(ADVERSARIAL).map(lambda p: f"acs:ram::{ACCOUNT}:user/{p}"),
    st.text("ab*?/.", min_size=1, max_size=12).map(lambda p: f"acs:ram::{OTHER}:" + p),
)


@st.composite
def statement(draw: st.DrawFn, kind: PolicyKind, wild: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Deny"])),
        "Action": draw(one_or_list(actions if wild else valid_actions)),
    }
    if kind is not PolicyKind.TRUST or draw(st.booleans()):
        out["Resource"] = draw(one_or_list(resources))
    who = principals if wild else valid_principals
    if kind is PolicyKind.KEY:
        out["Principal"] = {"RAM": draw(one_or_list(who))}
    elif kind is PolicyKind.TRUST:
        principal: dict[str, Any] = {"RAM": draw(one_or_list(who))}
        if draw(st.booleans()):
            principal["Service"] = draw(one_or_list(st.sampled_from(["ecs.aliyuncs.com", "x"])))
        out["Principal"] = principal
    if draw(st.booleans()):
        out["Condition"] = draw(condition_block(wild))
    if draw(st.booleans()):
        sids = st.sampled_from(["s1", "Key Users", "", "a" * 128])
        out["Sid"] = draw(st.one_of(sids, text) if wild else sids)
    return out


@st.composite
def policy_text(draw: st.DrawFn, kind: PolicyKind) -> str:
    wild = draw(st.integers(0, 3)) == 0
    statements = st.lists(statement(kind, wild), min_size=1, max_size=4)
    document: Any = {"Version": "1", "Statement": draw(statements)}
    if draw(st.integers(0, 2)) == 0:
        document = draw(mutated_json(document))
    rendered = dumps(document, compact=draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0:
        rendered = draw(mutated_text(rendered))
    return rendered


facts = st.builds(
    RequestFacts,
    current_time=st.floats(min_value=-1e11, max_value=1e11),
    source_ip=st.one_of(st.none(), st.sampled_from(["10.1.2.3", "::1", "fe80::1%eth0", "1.2.3.4.5"]), text),
    secure_transport=st.booleans(),
    resource_tags=st.dictionaries(st.sampled_from(["team", "env", "k"]), st.one_of(text, st.just("a" * 128))),
    request_tags=st.dictionaries(st.sampled_from(["team", "env", "k"]), st.one_of(text, st.just("a" * 128))),
)


@st.composite
def access_request(draw: st.DrawFn, document: PolicyDocument) -> AccessRequest:
    account = draw(st.sampled_from([ACCOUNT, OTHER]))
    name = draw(st.one_of(st.sampled_from(["alice", "a" * 64]), text))
    return AccessRequest(
        principal_account=account,
        principal_arn=draw(
            st.sampled_from(
                [
                    f"acs:ram::{account}:root",
                    f"acs:ram::{account}:user/{name}",
                    f"acs:ram::{account}:role/{name}",
                ]
            )
        ),
        action="kms:"
        + draw(st.one_of(st.sampled_from(["Encrypt", "ListKeys", "aaaaaaaaaaaaaaaaaaaaab"]), text)),
        resource_account=draw(st.sampled_from([ACCOUNT, OTHER, None])),
        resource_arn=draw(
            st.sampled_from([f"acs:kms:cn-hangzhou:{ACCOUNT}:key/key-" + "a" * 40, "acs:kms:::::::::::::::"])
        ),
        facts=draw(facts),
        identity_policies=(document,) if document.kind is PolicyKind.IDENTITY else (),
        key_policy=document if document.kind is PolicyKind.KEY else None,
    )


@fuzz_settings(250)
@given(st.sampled_from(list(PolicyKind)), st.data())
def test_policy_documents_parse_or_are_refused_and_evaluate_without_error(
    kind: PolicyKind, data: st.DataObject
) -> None:
    rendered = data.draw(policy_text(kind))
    parsed = refused_or_value(lambda: parse_policy(rendered, kind))
    event("refused" if isinstance(parsed, MalformedPolicy) else "parsed")
    if isinstance(parsed, MalformedPolicy):
        return
    assert isinstance(parsed, PolicyDocument), parsed
    for _ in range(3):
        request = data.draw(access_request(parsed))
        with no_hang():
            decision = evaluate(request)
            assert isinstance(decision, Decision)
            if kind is PolicyKind.TRUST:
                ok, reason = trusted(parsed, request.principal_account, request.principal_arn, request.facts)
                assert isinstance(ok, bool) and reason
            if kind is PolicyKind.KEY:
                assert ACCOUNT not in other_accounts(parsed, ACCOUNT)


def test_an_adversarial_wildcard_against_a_caller_chosen_tag_value_is_decided_at_once() -> None:
    """A key user may tag the key (kms:TagResource), so it chooses the text a StringLike condition
    matches. With a backtracking matcher this one evaluation took minutes: a denial of service."""
    policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:*",
                "Resource": "*",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/alice"]},
                "Condition": {"StringLike": {"acs:ResourceTag/team": "*a" * 12 + "b"}},
            }
        ],
    }
    document = parse_policy(dumps(policy), PolicyKind.KEY)

    def decide(tag_value: str) -> bool:
        request = AccessRequest(
            principal_account=ACCOUNT,
            principal_arn=f"acs:ram::{ACCOUNT}:user/alice",
            action="kms:Encrypt",
            resource_account=ACCOUNT,
            resource_arn=f"acs:kms:cn-hangzhou:{ACCOUNT}:key/key-1",
            facts=RequestFacts(current_time=0.0, resource_tags={"team": tag_value}),
            key_policy=document,
        )
        with no_hang():
            return evaluate(request).allowed

    assert not decide("a" * 128)
    assert decide("a" * 127 + "b")


def reference_match(pattern: str, value: str) -> bool:
    """Wildcard matching by dynamic programming: the obviously correct, slow definition."""

    @cache
    def at(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        if pattern[i] == "*":
            return at(i + 1, j) or (j < len(value) and at(i, j + 1))
        return j < len(value) and pattern[i] in ("?", value[j]) and at(i + 1, j + 1)

    return at(0, 0)


@fuzz_settings(500)
@given(st.text("ab*?.\\", max_size=10), st.text("ab.\\\n", max_size=14))
def test_wildcards_match_exactly_as_defined(pattern: str, value: str) -> None:
    assert matches(pattern, value) is reference_match(pattern, value)
    assert action_matches(pattern.upper(), value) is reference_match(pattern, value.lower())


@fuzz_settings(60)
@given(st.sampled_from(ADVERSARIAL), st.sampled_from("a?:x"), st.integers(1, 4000))
def test_adversarial_wildcards_return_at_once(pattern: str, char: str, length: int) -> None:
    with no_hang():
        matches(pattern, char * length)
        matches(pattern, char * length, ignore_case=True)


@fuzz_settings(60)
@given(st.sampled_from(list(PolicyKind)), deep_json(100_000))
def test_deeply_nested_documents_are_refused_cleanly(kind: PolicyKind, document: str) -> None:
    with no_hang():
        try:
            parse_policy(document, kind)
        except MalformedPolicy as error:
            assert_documented_refusal(error)
        else:
            raise AssertionError("a nested array is no policy document")


@fuzz_settings(60)
@given(st.integers(1, 20_000))
def test_deep_nesting_inside_a_statement_is_refused_cleanly(depth: int) -> None:
    for field in ("Condition", "Action", "Principal", "Resource"):
        statement = f'{{"Effect":"Allow","{field}":' + "[" * depth + "]" * depth + "}"
        document = f'{{"Version":"1","Statement":[{statement}]}}'
        with no_hang():
            try:
                parse_policy(document, PolicyKind.KEY)
            except MalformedPolicy as error:
                assert_documented_refusal(error)


@fuzz_settings(200)
@given(json_values, st.sampled_from(list(PolicyKind)))
def test_any_json_value_is_refused_or_parsed(value: Any, kind: PolicyKind) -> None:
    refused_or_value(lambda: parse_policy(dumps(value), kind))


@fuzz_settings(100)
@given(st.one_of(st.sampled_from(NASTY), text))
def test_key_policy_documents_of_any_text(text_value: str) -> None:
    key_policy_document.cache_clear()
    refused_or_value(lambda: key_policy_document(ACCOUNT, text_value))
