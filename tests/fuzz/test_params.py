"""Fuzzing api/params.py: the request parser and the typed accessors never fail but with a documented
refusal, whatever the bytes, and what they return is well-formed."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from hypothesis import example, given
from hypothesis import strategies as st

from openkms.api.params import Params, RpcRequest, parse_request
from openkms.errors import OpenKMSError
from tests.fuzz.strategies import NASTY, deep_json, dumps, json_values, mutated_text, text, wire_text
from tests.fuzz.support import fuzz_settings, refused_or_value

FORM = (b"content-type", b"application/x-www-form-urlencoded")
NAMES = ("Action", "KeyId", "Tags", "Tag.1.Key", "Tag.2.Value", "ResourceId.1", "EncryptionContext")


@st.composite
def form_text(draw: st.DrawFn) -> bytes:
    """A query string or form body: pieces encoded one of several ways, some broken on purpose."""
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.one_of(st.sampled_from(NAMES), wire_text))
        value = draw(wire_text)
        encode = draw(st.sampled_from([quote_plus, quote, lambda s: s]))
        pieces.append(encode(name) + draw(st.sampled_from(["=", "", "=="])) + encode(value))
    joined = draw(st.sampled_from(["&", "&&", ";"])).join(pieces)
    raw = joined.encode()
    if draw(st.booleans()):
        raw = draw(mutated_text(joined)).encode("utf-8", "surrogatepass")
    return raw


headers = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from([b"content-type", b"host", b"authorization", b"Content-Type"]), st.binary()
        ),
        st.one_of(st.just(FORM[1]), st.binary(max_size=60)),
    ),
    max_size=5,
)


def check_request(request: RpcRequest) -> None:
    for name, value in request.params.items():
        # Every decoded name and value is well-formed Unicode: later layers may encode it freely.
        name.encode()
        value.encode()
    for name in request.headers:
        assert name == name.lower()


@fuzz_settings(300)
@given(
    st.sampled_from(["GET", "POST", "get", "PUT", "", "\u00e9"]),
    st.one_of(form_text(), st.binary(max_size=200)),
    headers,
    st.one_of(form_text(), st.binary(max_size=200)),
)
def test_parse_request_refuses_only_with_documented_codes(
    method: str, query: bytes, header_list: list[tuple[bytes, bytes]], body: bytes
) -> None:
    outcome = refused_or_value(lambda: parse_request(method, "/", query, [*header_list, FORM], body))
    if not isinstance(outcome, OpenKMSError):
        check_request(outcome)


@st.composite
def raw_params(draw: st.DrawFn) -> dict[str, str]:
    """A decoded parameter mapping as parse_request may hand it over, with names the accessors look at."""
    names = st.one_of(
        st.sampled_from(["Flag", "Count", "Doc", "Tag", "ResourceId"]),
        st.builds(
            lambda prefix, index, rest: f"{prefix}.{index}{rest}",
            st.sampled_from(["Tag", "ResourceId", "TagKey"]),
            st.one_of(st.integers(0, 30).map(str), st.sampled_from(["", "01", "1e3", "-1", "9" * 12, "٣"])),
            st.sampled_from(["", ".Key", ".Value", ".", ".Key.x", ".Other"]),
        ),
        wire_text,
    )
    values = st.one_of(wire_text, json_values.map(dumps), deep_json(5000))
    return draw(st.dictionaries(names, values, max_size=10))


@fuzz_settings(300)
@given(raw_params())
@example({"Doc": "[" * 300 + "]" * 300})  # orjson reads 1024 levels but writes 255: was a TypeError
def test_params_accessors_refuse_only_with_documented_codes(raw: dict[str, str]) -> None:
    params = Params(raw)
    refused_or_value(lambda: params.required_str("Flag"))
    refused_or_value(lambda: params.optional_bool("Flag"))
    number = refused_or_value(lambda: params.optional_int("Count", None, minimum=-5, maximum=10**12))
    assert number is None or isinstance(number, OpenKMSError) or -5 <= number <= 10**12
    obj = refused_or_value(lambda: params.json_object("Doc"))
    if isinstance(obj, dict):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items())
    refused_or_value(lambda: params.json_list("Doc"))
    for prefix in ("Tag", "ResourceId", "TagKey"):
        listed = refused_or_value(lambda prefix=prefix: params.repeat_list(prefix))
        assert isinstance(listed, OpenKMSError | list)
        records = refused_or_value(lambda prefix=prefix: params.repeat_records(prefix, ("Key", "Value")))
        if isinstance(records, list):
            assert all(set(record) <= {"Key", "Value"} for record in records)
    assert "Doc" not in repr(params) or "Doc" in raw  # names only, never values


@fuzz_settings(100)
@given(deep_json())
def test_deeply_nested_json_parameters_are_refused_cleanly(document: str) -> None:
    params = Params({"Doc": document})
    refused_or_value(lambda: params.json_list("Doc"))
    refused_or_value(lambda: params.json_object("Doc"))


@fuzz_settings(200)
@given(st.lists(st.tuples(st.sampled_from(NASTY), text), max_size=6))
def test_json_object_with_nasty_keys_and_values(pairs: list[tuple[str, str]]) -> None:
    document = "{" + ",".join(f"{dumps(k)}:{dumps(v)}" for k, v in pairs) + "}"
    refused_or_value(lambda: Params({"Doc": document}).json_object("Doc"))
