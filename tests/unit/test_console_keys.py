"""The Keys page's own logic: the ListKeys filters it sends, the specs the Create Key panel offers per
instance kind (F2), and the access quota units of Users of Other Accounts (F4.3)."""

from __future__ import annotations

from typing import Any

from openkms.console.pages.create_key import offer_of, quota_units
from openkms.console.pages.keys import Instance, _back, _filters

ACCOUNT = "1234567890123456"


def _chosen(**given: str) -> dict[str, str]:
    return {
        name: given.get(name, "")
        for name in ("instance", "state", "spec", "tag_key", "tag_value", "q", "page")
    }


def test_filters_always_name_the_instance_and_send_what_was_chosen() -> None:
    assert _filters("kst-a", _chosen()) == [{"Key": "DKMSInstanceId", "Values": ["kst-a"]}]
    sent = _filters("kst-a", _chosen(state="Disabled", spec="RSA_2048", tag_key="team", tag_value="x"))
    assert {item["Key"]: item["Values"] for item in sent} == {
        "DKMSInstanceId": ["kst-a"],
        "KeyState": ["Disabled"],
        "KeySpec": ["RSA_2048"],
        "TagKey": ["team"],
        "TagValue": ["x"],
    }


def test_search_is_a_key_id_or_an_alias() -> None:
    def searched(text: str) -> dict[str, object]:
        return {item["Key"]: item["Values"] for item in _filters("kst-a", _chosen(q=text))}

    assert searched("key-hzz123")["keyId"] == ["key-hzz123"]
    assert searched("acs:kms:cn-hangzhou:1:key/key-hzz123")["keyId"] == ["key-hzz123"]
    assert searched("orders")["AliasName"] == ["alias/orders"]
    assert searched("alias/orders")["AliasName"] == ["alias/orders"]


def test_back_keeps_only_the_list_query() -> None:
    assert _back("state=Enabled&page=2&notice=x&evil=1") == {"state": "Enabled", "page": "2"}


def test_offer_follows_the_instance_kind() -> None:
    software = offer_of(Instance("kst-a", "", "software"))
    assert software.symmetric == ("Aliyun_AES_256",)
    assert software.asymmetric == ("RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P256K")
    assert set(software.asymmetric_usages) == {"SIGN/VERIFY", "ENCRYPT/DECRYPT"}
    hardware = offer_of(Instance("kst-b", "", "hardware"))
    assert hardware.symmetric == ("Aliyun_AES_256", "Aliyun_AES_192", "Aliyun_AES_128")
    assert hardware.asymmetric == software.asymmetric
    external = offer_of(Instance("kst-c", "", "external"))
    assert (external.symmetric, external.asymmetric) == (("Aliyun_AES_256",), ())
    assert (hardware.kind, external.kind, software.kind, offer_of(None).kind) == (
        "hardware",
        "external",
        "software",
        "",
    )
    assert offer_of(None).symmetric == ()


def test_quota_counts_distinct_other_accounts() -> None:
    typed = "\n".join(
        [
            "acs:ram::1111111111111111:user/alice",
            "acs:ram::1111111111111111:role/ops",
            "  acs:ram::2222222222222222:user/bob  ",
            f"acs:ram::{ACCOUNT}:user/me",
            "not a principal",
            "",
        ]
    )
    assert quota_units(typed, ACCOUNT) == 2
    assert quota_units("", ACCOUNT) == 0


def test_the_extensions_of_hardware_and_external_keys_reach_create_key() -> None:
    from types import SimpleNamespace

    from starlette.datastructures import FormData

    from openkms.console.pages.create_key import _create_params, choice_of

    console: Any = SimpleNamespace(principal=SimpleNamespace(account_id="1"))
    pair = choice_of(
        FormData(
            [
                ("key_type", "asymmetric"),
                ("KeySpec", "RSA_2048"),
                ("KeyUsage", "SIGN/VERIFY"),
                ("additional_usage", "SIGN/VERIFY"),
                ("additional_usage", "ENCRYPT/DECRYPT"),
            ]
        )
    )
    params = _create_params(console, "kst-hsm", pair)
    assert params["OpenKMSAdditionalKeyUsages"] == "ENCRYPT/DECRYPT"  # the chosen usage is not repeated
    assert params["OpenKMSExternalKeyId"] is None
    external = choice_of(FormData([("key_type", "symmetric"), ("external_key_id", " key-1 ")]))
    params = _create_params(console, "kst-xks", external)
    assert (params["OpenKMSExternalKeyId"], params["OpenKMSAdditionalKeyUsages"]) == ("key-1", None)
    plain = _create_params(console, "kst-soft", choice_of(FormData([("key_type", "symmetric")])))
    assert plain["OpenKMSExternalKeyId"] is None and plain["OpenKMSAdditionalKeyUsages"] is None
