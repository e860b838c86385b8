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


def _render(template: str, lang: str = "en", **values: Any) -> str:
    from types import SimpleNamespace

    from starlette.requests import Request

    from openkms.console.state import PREFIX, templates
    from openkms.console.terms import translate

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"{PREFIX}/keys/create",
        "query_string": b"",
        "headers": [],
    }
    console = SimpleNamespace(
        request=Request(scope),
        csrf_token="token",
        here=f"{PREFIX}/keys/create",
        region="cn-hangzhou",
        sign_in_name="root",
        state=SimpleNamespace(settings=SimpleNamespace(regions=["cn-hangzhou"])),
        principal=SimpleNamespace(account_id=ACCOUNT),
    )
    return (
        templates()
        .get_template(template)
        .render(console=console, t=lambda term: translate(term, lang), lang=lang, prefix=PREFIX, **values)
    )


def test_a_hardware_key_pair_is_offered_the_other_usages_of_its_spec() -> None:
    import re

    from openkms.console.pages.create_key import Choice

    hardware = offer_of(Instance("kst-b", "", "hardware"))
    assert hardware.specs_with_usage("ENCRYPT/DECRYPT") == ("RSA_2048", "RSA_3072", "RSA_4096")
    assert hardware.specs_with_usage("SIGN/VERIFY") == hardware.asymmetric
    assert hardware.specs_with_choice() == ("RSA_2048", "RSA_3072", "RSA_4096")  # EC keys only sign

    html = _render("keys/_spec_fields.html", offer=hardware, choice=Choice(key_type="asymmetric"))
    fieldset = re.search(r'<fieldset[^>]*id="additional-usages"[^>]*>', html)
    assert fieldset is not None and 'data-show-when="KeySpec=RSA_2048|RSA_3072|RSA_4096"' in fieldset.group(0)
    # Each usage is shown for the specs that have it, while the chosen Key Usage is another one.
    shown = re.findall(
        r'<span data-show-when="KeySpec=([^"]*)"><span class="choice" data-show-when="KeyUsage=([^"]*)">\s*'
        r'<input type="checkbox" id="[^"]*" name="additional_usage" value="([^"]*)"',
        html,
    )
    assert shown == [
        ("RSA_2048|RSA_3072|RSA_4096|EC_P256|EC_P256K", "ENCRYPT/DECRYPT", "SIGN/VERIFY"),
        ("RSA_2048|RSA_3072|RSA_4096", "SIGN/VERIFY", "ENCRYPT/DECRYPT"),
    ]
    assert "OpenKMS" in html  # the extension is marked as one

    software = offer_of(Instance("kst-a", "", "software"))
    plain = _render("keys/_spec_fields.html", offer=software, choice=Choice(key_type="asymmetric"))
    assert "additional_usage" not in plain and "external_key_id" not in plain


def test_an_external_key_asks_for_its_external_key_id_and_offers_no_import() -> None:
    from openkms.console.pages.create_key import Choice

    external = offer_of(Instance("kst-c", "", "external"))
    values: dict[str, Any] = {
        "section": "keys",
        "instances": [Instance("kst-c", "", "external")],
        "instance": Instance("kst-c", "", "external"),
        "offer": external,
        "choice": Choice(),
        "tags": [("", "")],
        "max_tags": 20,
        "principals": [],
        "principals_wire": None,
        "quota": 0,
        "wire": None,
        "error": None,
        "made": None,
    }
    for lang in ("en", "zh"):
        html = _render("keys/create.html", lang, **values)
        assert 'name="external_key_id"' in html and " required>" in html.split('name="external_key_id"')[1]
        assert 'name="origin"' not in html and 'name="external_ack"' not in html
        assert 'value="Aliyun_AES_256"' in html and "RSA_2048" not in html
    software = offer_of(Instance("kst-a", "", "software"))
    html = _render(
        "keys/create.html", **{**values, "offer": software, "instance": Instance("kst-a", "", "software")}
    )
    assert 'name="origin"' in html and 'name="external_key_id"' not in html


def test_a_hardware_instance_offers_the_shorter_aes_keys() -> None:
    from openkms.console.pages.create_key import Choice

    html = _render(
        "keys/_spec_fields.html", offer=offer_of(Instance("kst-b", "", "hardware")), choice=Choice()
    )
    assert [f'value="Aliyun_AES_{bits}"' in html for bits in (256, 192, 128)] == [True, True, True]
