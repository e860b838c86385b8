"""api/params.py: request parsing (query + form body) and the typed `Params` accessors."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.api import params as params_module
from openkms.api.params import Params, RpcRequest, parse_form, parse_request
from openkms.errors import InvalidArgument, MissingParameter

FORM = (b"content-type", b"application/x-www-form-urlencoded")


def parse(
    query: bytes = b"", body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> RpcRequest:
    return parse_request("post", "/", query, headers or [], body)


# ---------------------------------------------------------------------------------------------- parse_request


def test_decodes_plus_percent_and_utf8() -> None:
    request = parse(b"Plaintext=hello+world&Description=my%20key&Name=%E4%B8%AD%C3%A9&KeyId=alias%2Fmy-app")
    assert request.params == {
        "Plaintext": "hello world",
        "Description": "my key",
        "Name": "中é",
        "KeyId": "alias/my-app",
    }
    assert request.method == "POST"
    assert request.path == "/"
    assert request.raw_query.startswith("Plaintext=hello+world&")


def test_keeps_empty_values_and_bare_names_and_skips_empty_pieces() -> None:
    request = parse(b"SignatureType=&Flag&&A=1&")
    assert request.params == {"SignatureType": "", "Flag": "", "A": "1"}


def test_value_may_contain_equals_sign() -> None:
    assert parse(b"A=b=c&B=%3D").params == {"A": "b=c", "B": "="}


def test_encoded_names_are_decoded() -> None:
    assert parse(b"Tag.1.Key=a&My+Name=b&%41=c").params == {"Tag.1.Key": "a", "My Name": "b", "A": "c"}


def test_raw_utf8_in_query_is_accepted() -> None:
    assert parse("A=中".encode()).params == {"A": "中"}


def test_empty_query() -> None:
    request = parse(b"")
    assert request.params == {}
    assert request.raw_query == ""


def test_headers_lowercased_latin1_and_repeats_joined() -> None:
    request = parse(
        headers=[
            (b"Host", b"h"),
            (b"X-Acs-Date", b"d"),
            (b"Accept", b"a"),
            (b"accept", b"b"),
            (b"X", b"\xe9"),
        ]
    )
    assert request.headers == {"host": "h", "x-acs-date": "d", "accept": "a,b", "x": "é"}


def test_form_body_params_are_merged() -> None:
    request = parse(b"Action=Encrypt", b"Plaintext=a+b&KeyId=k%2F1", [FORM])
    assert request.params == {"Action": "Encrypt", "Plaintext": "a b", "KeyId": "k/1"}
    assert request.body == b"Plaintext=a+b&KeyId=k%2F1"


def test_form_content_type_with_charset_and_any_case() -> None:
    headers = [(b"Content-Type", b"Application/X-WWW-Form-Urlencoded; charset=UTF-8")]
    assert parse(b"", b"A=1", headers).params == {"A": "1"}


@pytest.mark.parametrize(
    "content_type", [None, b"application/json", b"application/octet-stream", b"text/plain"]
)
def test_non_form_bodies_are_not_parameters(content_type: bytes | None) -> None:
    headers = [] if content_type is None else [(b"content-type", content_type)]
    request = parse(b"A=1", b"B=2", headers)
    assert request.params == {"A": "1"}
    assert request.body == b"B=2"


@pytest.mark.parametrize(
    ("query", "body", "name"),
    [
        (b"A=1&A=1", b"", "A"),
        (b"A=1&B=2&A=", b"", "A"),
        (b"", b"B=1&B=2", "B"),
        (b"C=1", b"C=1", "C"),
        (b"My+Name=1&My%20Name=2", b"", "My Name"),
    ],
)
def test_repeated_name_is_rejected(query: bytes, body: bytes, name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(query, body, [FORM])
    assert caught.value.parameter == name
    assert caught.value.message == f"The parameter {name} is given more than once."


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (b"A=%FF", b""),  # escaped invalid UTF-8 in a value
        (b"%C3=1", b""),  # escaped truncated sequence in a name
        (b"A=\xff", b""),  # raw invalid UTF-8 in the query
        (b"", b"A=%80"),
        (b"", b"A=\xc3"),
    ],
)
def test_invalid_utf8_is_rejected(query: bytes, body: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse(query, body, [FORM])


def test_parse_form_into_existing_dict() -> None:
    base = {"A": "1"}
    assert parse_form("B=2", base) is base
    assert base == {"A": "1", "B": "2"}
    with pytest.raises(InvalidArgument):
        parse_form("A=3", base)


def test_request_is_frozen() -> None:
    request = parse(b"A=1")
    with pytest.raises(AttributeError):
        request.method = "GET"  # type: ignore[misc]


param_names = st.text(min_size=1, max_size=20)
param_values = st.text(max_size=40)
param_dicts = st.dictionaries(param_names, param_values, max_size=12)


@settings(max_examples=300)
@given(param_dicts)
def test_round_trip_quote_plus(params: dict[str, str]) -> None:
    query = "&".join(quote_plus(k) + "=" + quote_plus(v) for k, v in params.items())
    assert parse(query.encode()).params == params
    assert parse_form(query) == dict(parse_qsl(query, keep_blank_values=True))


@settings(max_examples=300)
@given(param_dicts)
def test_round_trip_percent20(params: dict[str, str]) -> None:
    query = "&".join(quote(k, safe="") + "=" + quote(v, safe="") for k, v in params.items())
    assert parse(query.encode()).params == params


@settings(max_examples=200)
@given(param_dicts, param_dicts)
def test_round_trip_query_and_form_body(query_params: dict[str, str], body_params: dict[str, str]) -> None:
    body_params = {k: v for k, v in body_params.items() if k not in query_params}
    request = parse(urlencode(query_params).encode(), urlencode(body_params).encode(), [FORM])
    assert request.params == {**query_params, **body_params}


def reference_parse(text: str) -> dict[str, str] | None:
    """The same rules written with urllib only; ``None`` where parse_form must raise InvalidArgument."""
    out: dict[str, str] = {}
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        try:
            name = unquote_plus(name, errors="strict")
            value = unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            return None
        if name in out:
            return None
        out[name] = value
    return out


tricky_text = st.text(
    st.sampled_from(list("%%%=+&&0123456789abcdefABCDEFxyzXYZ_~.- \t\r\n\x00é中😀")), max_size=60
)
escaped_bytes = st.lists(st.integers(0, 255), max_size=12).map(
    lambda bs: "".join(f"%{b:02x}" if b % 3 else f"%{b:02X}" for b in bs)
)


@settings(max_examples=1000)
@given(st.lists(st.one_of(tricky_text, escaped_bytes), max_size=6).map("".join))
def test_decoding_matches_urllib(text: str) -> None:
    """parse_form's fast decoding (binascii for good escapes) agrees with urllib on adversarial input."""
    expected = reference_parse(text)
    if expected is None:
        with pytest.raises(InvalidArgument):
            parse_form(text)
    else:
        assert parse_form(text) == expected


# ---------------------------------------------------------------------------------------------- Params


def p(**values: str) -> Params:
    return Params(values)


def test_raw_and_contains_and_repr_hides_values() -> None:
    params = p(KeyId="k", Plaintext="secret-ish")
    assert params.raw == {"KeyId": "k", "Plaintext": "secret-ish"}
    assert "KeyId" in params
    assert "Missing" not in params
    assert "secret-ish" not in repr(params)


def test_required_str() -> None:
    assert p(KeyId="k").required_str("KeyId") == "k"
    for params in (p(), p(KeyId="")):
        with pytest.raises(MissingParameter) as caught:
            params.required_str("KeyId")
        assert caught.value.parameter == "KeyId"


def test_optional_str() -> None:
    assert p(A="x").optional_str("A") == "x"
    assert p(A="").optional_str("A") == ""
    assert p(A="").optional_str("A", "d") == ""
    assert p().optional_str("A") is None
    assert p().optional_str("A", "d") == "d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("fALSe", False)],
)
def test_optional_bool_values(value: str, expected: bool) -> None:
    assert p(DryRun=value).optional_bool("DryRun", not expected) is expected


def test_optional_bool_absent_or_empty_is_default() -> None:
    assert p().optional_bool("DryRun", True) is True
    assert p(DryRun="").optional_bool("DryRun", False) is False
    assert p().optional_bool("DryRun") is None


@pytest.mark.parametrize("value", ["1", "0", "yes", "t", " true", "true ", "truex"])
def test_optional_bool_rejects_other_text(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        p(DryRun=value).optional_bool("DryRun", False)
    assert caught.value.parameter == "DryRun"
    assert not isinstance(caught.value, MissingParameter)


def test_optional_int() -> None:
    params = p(PageSize="20", Neg="-5", Zero="0", Empty="")
    assert params.optional_int("PageSize", 10, minimum=1, maximum=100) == 20
    assert params.optional_int("Neg", 0, minimum=-10, maximum=10) == -5
    assert params.optional_int("Zero", 3, minimum=0, maximum=10) == 0
    assert params.optional_int("Empty", 10, minimum=1, maximum=100) == 10
    assert params.optional_int("Absent", 10, minimum=1, maximum=100) == 10
    assert params.optional_int("Absent", None, minimum=1, maximum=100) is None
    assert params.optional_int("PageSize", None, minimum=20, maximum=20) == 20


@pytest.mark.parametrize(
    "value", ["abc", "1.5", " 1", "1 ", "+1", "1_000", "٣", "0x10", "1e3", "9" * 19, "--1"]
)
def test_optional_int_rejects_non_decimal(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        p(N=value).optional_int("N", 1, minimum=-(10**20), maximum=10**20)
    assert caught.value.parameter == "N"


@pytest.mark.parametrize("value", ["0", "101", "-1"])
def test_optional_int_range(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        p(N=value).optional_int("N", 1, minimum=1, maximum=100)
    assert caught.value.parameter == "N"
    assert "between 1 and 100" in caught.value.message


def test_json_object() -> None:
    assert p(C='{"a": "1", "b": ""}').json_object("C") == {"a": "1", "b": ""}
    assert p(C="{}").json_object("C") == {}
    assert p().json_object("C") is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not json",
        "[]",
        '"s"',
        "1",
        "null",
        '{"a": 1}',
        '{"a": null}',
        '{"a": {"b": "c"}}',
        '{"a": ["b"]}',
        '{"a": "1", "a": "2"}',
        '{"a":"1","a":"2"}',
        '{"a":"1","b":"2","a":"1"}',
        '{"a": NaN}',
        '{"a":Infinity}',
        "{" * 100000,
    ],
)
def test_json_object_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        p(C=value).json_object("C")
    assert caught.value.parameter == "C"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.booleans())
def test_json_fast_path_agrees_with_the_strict_parser(value: object, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(value, ensure_ascii=False, separators=separators)
    assert params_module._load_json("C", text) == json.loads(text)


@pytest.mark.parametrize("text", ['{"a":"\\ud800"}', '{"a":123456789012345678901234567890}', '{"a":1E400}'])
def test_json_outside_the_fast_path_is_parsed_strictly(text: str) -> None:
    assert params_module._load_json("C", text) == json.loads(text)


def test_json_list() -> None:
    assert p(Tags='[{"TagKey":"k","TagValue":"v"}]').json_list("Tags") == [{"TagKey": "k", "TagValue": "v"}]
    assert p(Tags="[]").json_list("Tags") == []
    assert p().json_list("Tags") is None


@pytest.mark.parametrize("value", ["", "{}", '"x"', "[", "[NaN]", "[Infinity]", "[" * 100000])
def test_json_list_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        p(Tags=value).json_list("Tags")
    assert caught.value.parameter == "Tags"


def test_repeat_list_orders_by_numeric_index() -> None:
    params = Params({f"ResourceId.{i}": f"r{i}" for i in (3, 1, 10, 2, 4, 5, 6, 7, 8, 9)} | {"Other": "x"})
    assert params.repeat_list("ResourceId") == [f"r{i}" for i in range(1, 11)]
    assert p().repeat_list("ResourceId") == []
    assert Params({"ResourceIdX.1": "a", "ResourceId": "b"}).repeat_list("ResourceId") == []


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"R.2": "b"}, "R.1"),  # does not start at 1
        ({"R.1": "a", "R.3": "c"}, "R.2"),  # gap
        ({"R.0": "a"}, "R.0"),
        ({"R.01": "a"}, "R.01"),
        ({"R.-1": "a"}, "R.-1"),
        ({"R.x": "a"}, "R.x"),
        ({"R.": "a"}, "R."),
        ({"R.1.Key": "a"}, "R.1.Key"),
        ({"R.1.": "a"}, "R.1."),
        ({"R.1234567": "a"}, "R.1234567"),
    ],
)
def test_repeat_list_errors(params: dict[str, str], bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Params(params).repeat_list("R")
    assert caught.value.parameter == bad


def test_repeat_records() -> None:
    params = Params(
        {
            "Tag.2.Key": "k2",
            "Tag.1.Value": "v1",
            "Tag.1.Key": "k1",
            "Tag.2.Value": "",
            "Tag.3.Key": "k3",
            "X": "y",
        }
    )
    assert params.repeat_records("Tag", ("Key", "Value")) == [
        {"Key": "k1", "Value": "v1"},
        {"Key": "k2", "Value": ""},
        {"Key": "k3"},
    ]
    assert p().repeat_records("Tag", ("Key", "Value")) == []


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"Tag.1.Key": "a", "Tag.3.Key": "c"}, "Tag.2"),
        ({"Tag.2.Key": "a"}, "Tag.1"),
        ({"Tag.1.Other": "a"}, "Tag.1.Other"),
        ({"Tag.1": "a"}, "Tag.1"),
        ({"Tag.1.Key.x": "a"}, "Tag.1.Key.x"),
        ({"Tag.x.Key": "a"}, "Tag.x.Key"),
        ({"Tag.0.Key": "a"}, "Tag.0.Key"),
        ({"Tag.1.": "a"}, "Tag.1."),
    ],
)
def test_repeat_records_errors(params: dict[str, str], bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Params(params).repeat_records("Tag", ("Key", "Value"))
    assert caught.value.parameter == bad


def test_repeat_records_from_the_wire() -> None:
    request = parse(b"Tag.1.Key=env&Tag.1.Value=dev+1&ResourceId.1=k1&ResourceId.2=k%2F2")
    params = Params(request.params)
    assert params.repeat_records("Tag", ["Key", "Value"]) == [{"Key": "env", "Value": "dev 1"}]
    assert params.repeat_list("ResourceId") == ["k1", "k/2"]


def test_flattened_map_is_the_json_object() -> None:
    """`EncryptionContext.<key>=<value>` (Alibaba's Node.js SDK) is the same map as the JSON form."""
    flat = Params({"EncryptionContext.purpose": "backup", "EncryptionContext.a.b": "x y", "KeyId": "k"})
    as_json = Params({"EncryptionContext": json.dumps({"purpose": "backup", "a.b": "x y"})})
    assert flat.json_object("EncryptionContext") == as_json.json_object("EncryptionContext")
    assert flat.json_object("EncryptionContext") == {"purpose": "backup", "a.b": "x y"}
    assert flat.json_object("SourceEncryptionContext") is None  # another parameter's prefix only
    assert Params({"EncryptionContextX.a": "1"}).json_object("EncryptionContext") is None
    assert Params({"EncryptionContext.empty": ""}).json_object("EncryptionContext") == {"empty": ""}


def test_flattened_and_json_forms_together_are_refused() -> None:
    both = Params({"EncryptionContext": '{"a":"1"}', "EncryptionContext.a": "1"})
    with pytest.raises(InvalidArgument) as caught:
        both.json_object("EncryptionContext")
    assert "both" in caught.value.message
    with pytest.raises(InvalidArgument):
        Params({"EncryptionContext.": "1"}).json_object("EncryptionContext")  # names no key


def test_actions_admit_flattened_maps_they_declare() -> None:
    from openkms.api.actions.crypto import ACTIONS

    by_name = {action.name: action for action in ACTIONS}
    by_name["Encrypt"].check_parameters(["KeyId", "Plaintext", "EncryptionContext.k"])
    by_name["ReEncrypt"].check_parameters(
        ["CiphertextBlob", "DestinationKeyId", "SourceEncryptionContext.k", "DestinationEncryptionContext.k"]
    )
    with pytest.raises(InvalidArgument):
        by_name["Encrypt"].check_parameters(["KeyId", "Plaintext", "SourceEncryptionContext.k"])
    with pytest.raises(InvalidArgument):
        by_name["Encrypt"].check_parameters(["KeyId", "Plaintext", "Tags.k"])


def test_a_request_the_parameter_check_found_plain_is_not_searched_for_flattened_maps() -> None:
    """The dispatcher passes `dotted=False` when every name was one the action declares literally; a
    flattened name never is one, so the search may be skipped (the hot path's Encrypt)."""
    from openkms.api.actions.crypto import ACTIONS

    encrypt = next(action for action in ACTIONS if action.name == "Encrypt")
    assert encrypt.check_parameters(["KeyId", "Plaintext", "EncryptionContext"]) is False
    assert encrypt.check_parameters(["KeyId", "Plaintext", "EncryptionContext.k"]) is True
    raw = {"KeyId": "k", "EncryptionContext": '{"a":"1"}'}
    assert Params(raw, dotted=False).json_object("EncryptionContext") == {"a": "1"}
