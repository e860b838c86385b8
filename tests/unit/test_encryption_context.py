"""canonical_context: order-insensitive, injective, exact about values."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.domain.encryption_context import canonical_context, derived_aad
from openkms.errors import InvalidArgument

contexts = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6)
# Every character class that JSON escapes differently somewhere: controls, quotes, backslash, DEL,
# non-ASCII, astral, U+2028/9.
tricky_text = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.sampled_from(['"', "\\", "\x7f", "\u2028", "\u2029", "\ufeff", "\U0001f511"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=10,
)

# The encoding every existing ciphertext was made with (the standard library's, before orjson did it).
_REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_empty_and_none_are_empty_bytes() -> None:
    assert canonical_context(None) == b""
    assert canonical_context({}) == b""


def test_known_encoding() -> None:
    assert canonical_context({"purpose": "test", "n": "1"}) == b'{"n":"1","purpose":"test"}'
    assert canonical_context({"k": "\u4e2d"}) == '{"k":"\u4e2d"}'.encode()


@given(st.dictionaries(tricky_text, tricky_text, min_size=1, max_size=6))
def test_bytes_equal_the_reference_encoding(context: dict[str, str]) -> None:
    assert canonical_context(context) == _REFERENCE.encode(context).encode("utf-8")


def test_every_code_point_encodes_as_the_reference_does() -> None:
    for code_point in [*range(0xD800), *range(0xE000, 0x110000, 11)]:
        context = {f"k{chr(code_point)}": f"{chr(code_point)}v"}
        assert canonical_context(context) == _REFERENCE.encode(context).encode("utf-8"), hex(code_point)


def test_any_mapping_is_accepted() -> None:
    from types import MappingProxyType

    assert canonical_context(MappingProxyType({"b": "2", "a": "1"})) == b'{"a":"1","b":"2"}'


def test_whitespace_of_the_json_parameter_does_not_matter() -> None:
    compact = json.loads('{"purpose":"test","n":"1"}')
    spaced = json.loads('{ "n" : "1",\n  "purpose": "test" }')
    assert canonical_context(compact) == canonical_context(spaced)


def test_values_are_case_sensitive() -> None:
    assert canonical_context({"a": "x"}) != canonical_context({"a": "X"})
    assert canonical_context({"a": "x"}) != canonical_context({"A": "x"})


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": "b,c:d"}, {"a": "b", "c": "d"}),
        ({"a": 'b","c":"d'}, {"a": "b", "c": "d"}),
        ({"a=b": ""}, {"a": "b"}),
        ({"": ""}, {}),
        ({"a": ""}, {"a": " "}),
    ],
)
def test_lookalike_maps_differ(left: dict[str, str], right: dict[str, str]) -> None:
    assert canonical_context(left) != canonical_context(right)


@given(contexts, st.randoms())
def test_permutation_invariant(context: dict[str, str], rnd: random.Random) -> None:
    items = list(context.items())
    rnd.shuffle(items)
    assert canonical_context(dict(items)) == canonical_context(context)


@given(contexts, contexts)
def test_different_maps_give_different_bytes(left: dict[str, str], right: dict[str, str]) -> None:
    if left != right:
        assert canonical_context(left) != canonical_context(right)
    else:
        assert canonical_context(left) == canonical_context(right)


@given(contexts)
def test_round_trips_through_json(context: dict[str, str]) -> None:
    encoded = canonical_context(context)
    assert (json.loads(encoded) if encoded else {}) == context


def test_non_string_values_are_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        canonical_context({"a": 1})  # type: ignore[dict-item]
    assert caught.value.parameter == "EncryptionContext"


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        canonical_context(json.loads('{"a": "\\ud800"}'))


@given(contexts, st.text(max_size=12), st.text(max_size=12))
def test_changing_one_entry_changes_the_bytes(context: dict[str, str], name: str, value: str) -> None:
    changed = {**context, name: value}
    if changed != context:
        assert canonical_context(changed) != canonical_context(context)


# ---- derived_aad: what the unified SDK sends as Aad for the same context ----------------------------


def _sdk_aad(context: dict[str, str]) -> bytes:
    """Alibaba's unified SDK, spelled out (alibabacloud_kms_kms20160120/utils/encryption_context_utils.py
    `sort_and_encode` with encoding utf-8): `k=v&` over the sorted keys, the last `&` dropped, SHA-256,
    lowercase hex as bytes."""
    text = "".join(f"{name}={context[name]}&" for name in sorted(context))[:-1]
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("utf-8")


def test_derived_aad_known_value() -> None:
    # The value the research stub received from the SDK for {"a": "1", "b": "2"} began 8e85be58.
    assert derived_aad({"b": "2", "a": "1"}) == _sdk_aad({"a": "1", "b": "2"})
    assert derived_aad({"b": "2", "a": "1"}).startswith(b"8e85be58")  # type: ignore[union-attr]
    assert derived_aad(None) == derived_aad({}) == b""


_SAFE = st.text(st.characters(blacklist_characters="&=", blacklist_categories=("Cs",)), max_size=12)


@given(
    st.dictionaries(
        _SAFE,
        st.text(st.characters(blacklist_characters="&", blacklist_categories=("Cs",))),
        min_size=1,
        max_size=6,
    )
)
def test_derived_aad_is_the_sdks(context: dict[str, str]) -> None:
    assert derived_aad(context) == _sdk_aad(context)


@pytest.mark.parametrize("context", [{"a": "1&b=2"}, {"a&b": "1"}, {"a=b": "1"}, {"x": "ok", "y": "&"}])
def test_derived_aad_refuses_what_it_cannot_tell_apart(context: dict[str, str]) -> None:
    assert derived_aad(context) is None


def test_ambiguity_is_what_it_guards() -> None:
    """The case it exists for: two maps, one string."""
    assert _sdk_aad({"a": "1&b=2"}) == _sdk_aad({"a": "1", "b": "2"})
    assert derived_aad({"a": "1&b=2"}) is None and derived_aad({"a": "1", "b": "2"}) is not None
    assert derived_aad({"a": "x=y"}) == _sdk_aad({"a": "x=y"})  # `=` in a value splits at the first `=`


@pytest.mark.parametrize("context", [{"a": 1}, {"a": "\ud800"}])
def test_derived_aad_refuses_what_canonical_context_refuses(context: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        derived_aad(context)  # type: ignore[arg-type]
