"""The instance API's access decision (`domain/access_decision.py`) and the rules of application
access values (`domain/access_points.py`, `service/access_points.parse_access_control_rules`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openkms.domain.access_decision import AccessGrant, admits_source, decide_access, key_resource
from openkms.domain.access_points import (
    AccessPoint,
    AccessPolicy,
    ClientKey,
    InstancePermission,
    NetworkRule,
    check_client_key_password,
    check_resources,
    check_source_addresses,
    string_list,
)
from openkms.errors import InvalidArgument
from openkms.service.access_points import parse_access_control_rules

NOW = datetime(2026, 12, 5, tzinfo=UTC)
KEY_USER = InstancePermission.KEY_USER
INSTANCE = "kst-hzzinstance"


def rule(name: str, *addresses: str) -> NetworkRule:
    return NetworkRule("1", "cn-hangzhou", name, "", "Private", addresses, NOW)


def policy(
    name: str,
    *,
    rules: tuple[str, ...] = ("office",),
    resources: tuple[str, ...] = ("key/*",),
    permissions: tuple[str, ...] = (KEY_USER.value,),
    instance: str = INSTANCE,
) -> AccessPolicy:
    return AccessPolicy("1", "cn-hangzhou", name, "", instance, permissions, resources, rules, NOW)


def grant(
    *policies: AccessPolicy,
    names: tuple[str, ...] | None = None,
    rules: tuple[NetworkRule, ...] = (rule("office", "10.0.0.0/8", "2001:db8::/32"),),
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=1),
) -> AccessGrant:
    point = AccessPoint(
        "1",
        "cn-hangzhou",
        "app",
        "",
        "ClientKey",
        names if names is not None else tuple(p.name for p in policies),
        NOW,
    )
    key = ClientKey("KAAP.x", "1", "cn-hangzhou", "app", "RSA_2048", b"", not_before, not_after, NOW)
    return AccessGrant(key, point, {p.name: p for p in policies}, {r.name: r for r in rules})


def ask(
    g: AccessGrant,
    *,
    key: str = "key-hzz1",
    ip: str | None = "10.1.2.3",
    permission: InstancePermission = KEY_USER,
    instance: str = INSTANCE,
) -> tuple[bool, str]:
    decision = decide_access(
        g, instance_id=instance, resource=key_resource(key), permission=permission, source_ip=ip, now=NOW
    )
    return decision.allowed, decision.reason


def test_a_policy_that_grants_scopes_covers_and_admits_allows() -> None:
    assert ask(grant(policy("p"))) == (True, "allowed by policy p")
    assert ask(grant(policy("p")), ip="2001:db8::5")[0] is True


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ip": "192.168.1.1"}, "no network rule of it admits the source address"),
        ({"ip": None}, "no network rule of it admits the source address"),
        ({"ip": "not-an-ip"}, "no network rule of it admits the source address"),
        ({"permission": InstancePermission.SECRET_USER}, "does not grant"),
        ({"instance": "kst-hzzother"}, "is scoped to another instance"),
    ],
)
def test_each_condition_is_required(changes: dict[str, object], reason: str) -> None:
    allowed, why = ask(grant(policy("p")), **changes)  # type: ignore[arg-type]
    assert allowed is False and reason in why


def test_resources_match_exactly_or_by_a_trailing_star() -> None:
    exact = grant(policy("p", resources=("key/key-hzz1",)))
    assert ask(exact)[0] is True and ask(exact, key="key-hzz10")[0] is False
    prefix = grant(policy("p", resources=("key/key-hzz1*",)))
    assert ask(prefix, key="key-hzz10")[0] is True and ask(prefix, key="key-hzz2")[0] is False
    secrets_only = grant(policy("p", resources=("secret/*",)))
    assert ask(secrets_only)[0] is False


def test_validity_of_the_client_key() -> None:
    assert ask(grant(policy("p"), not_after=NOW)) == (False, "the client key has expired (NotAfter)")
    assert ask(grant(policy("p"), not_before=NOW + timedelta(seconds=1)))[1].endswith("(NotBefore)")


def test_deny_by_default_for_missing_and_empty_things() -> None:
    assert ask(grant(policy("p", rules=())))[0] is False  # no network rule admits anything
    assert ask(grant(policy("p", rules=("gone",))))[0] is False  # a deleted rule grants nothing
    assert ask(grant(names=("gone",))) == (False, "policy gone does not exist")
    assert ask(grant(names=())) == (False, "the application access point has no policy")


def test_any_one_policy_is_enough() -> None:
    g = grant(policy("narrow", resources=("key/other",)), policy("wide"))
    assert ask(g) == (True, "allowed by policy wide")


def test_an_operation_on_no_resource_needs_a_rule_admitting_the_caller() -> None:
    """GenerateRandom: any policy's network rule admitting the address, whatever it grants."""

    def admits(g: AccessGrant, ip: str | None = "10.1.2.3", now: datetime = NOW) -> bool:
        return admits_source(g, source_ip=ip, now=now).allowed

    secrets_only = policy("s", permissions=(InstancePermission.SECRET_USER.value,), resources=("secret/*",))
    assert admits(grant(secrets_only)) and admits(grant(policy("p")), ip="2001:db8::1")
    assert not admits(grant(policy("p")), ip="192.168.1.1")
    assert not admits(grant(policy("p")), ip=None)
    assert not admits(grant(policy("p", rules=("gone",))))
    assert not admits(grant(names=("gone",)))
    assert admits_source(grant(names=()), source_ip="10.1.2.3", now=NOW).reason.endswith("has no policy")
    assert not admits(grant(policy("p"), not_after=NOW))
    assert not admits(grant(policy("p"), not_before=NOW + timedelta(seconds=1)))


def test_list_parameters_take_json_arrays_or_commas() -> None:
    assert string_list('["a", "b"]', "X") == ("a", "b")
    assert string_list("a, b", "X") == ("a", "b")
    for bad in ("[]", "", '["a","a"]', "[1]", "[", "a,,b"):
        with pytest.raises(InvalidArgument):
            string_list(bad, "X")
    with pytest.raises(InvalidArgument):
        string_list("a,b,c,d", "Policies", limit=3)


def test_value_rules() -> None:
    assert check_source_addresses(["10.0.0.1", "192.168.7.9/24", "::1"]) == (
        "10.0.0.1",
        "192.168.7.9/24",
        "::1",
    )
    with pytest.raises(InvalidArgument):
        check_source_addresses(["10.0.0.256"])
    assert check_resources(["key/*", "secret/*", "key/key-hzz1", "key/key-*"])
    for bad in ("key/", "keys/*", "key/*x", "*", "key/a b"):
        with pytest.raises(InvalidArgument):
            check_resources([bad])
    assert check_client_key_password("Passw0rd") == "Passw0rd"
    assert check_client_key_password("abc-def_ghi")
    for bad in ("Short1", "onlyletters", "12345678", "with space1", "x" * 64 + "1", "pässwort1"):
        with pytest.raises(InvalidArgument):
            check_client_key_password(bad)


def test_access_control_rules_document() -> None:
    assert parse_access_control_rules(None) == ()
    assert parse_access_control_rules('{"NetworkRules":["a","b"]}') == ("a", "b")
    assert parse_access_control_rules('{"NetworkRules":[]}') == ()
    for bad in ("[]", '{"Other":[]}', '{"NetworkRules":"a"}', "nope", '{"NetworkRules":["bad name"]}'):
        with pytest.raises(InvalidArgument):
            parse_access_control_rules(bad)
