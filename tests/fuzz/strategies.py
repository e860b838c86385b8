"""Generators of hostile input: text with every kind of code point, JSON of any shape and depth, and
mutations of valid values (the way to reach past the first check of a parser)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Strings that have broken parsers before: escapes, separators, NULs, surrogates, overlong forms.
NASTY = (
    "",
    " ",
    "\x00",
    "\t\r\n",
    "%",
    "%%",
    "%0",
    "%zz",
    "%00",
    "%ff",
    "%C3%28",
    "%ED%A0%80",  # an encoded surrogate: invalid UTF-8
    "%C0%AF",  # an overlong "/"
    "+",
    "=",
    "&",
    "&&==",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\u202e",
    "\uffff",
    "😀",
    "中文",
    "ǅ",
    "İ",
    "ß",
    "NaN",
    "Infinity",
    "-0",
    "1e309",
    "9" * 40,
    "null",
    "true",
    "[]",
    "{}",
    '{"a":"b"}',
    "*",
    "?",
    "acs:ram::*:*",
    "alias/",
    "alias/acs/x",
    "aliyun:x",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-13-45T99:99:99Z",
    "::1",
    "0.0.0.0/0",
    "999.1.1.1/99",
    "a" * 300,
)

any_char = st.characters(exclude_categories=())  # surrogates and controls included
text = st.one_of(
    st.sampled_from(NASTY),
    st.text(any_char, max_size=40),
    st.text("%&=+;#?/.:*-_~ 0123456789abcdefABCDEF\x00\\\"'", max_size=40),
    st.text(st.characters(max_codepoint=0x7F), max_size=40),
)
# Text that can travel in an HTTP request (no surrogates: they are not UTF-8).
wire_text = text.filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(text, inner, max_size=5),
    ),
    max_leaves=25,
)


@st.composite
def deep_json(draw: st.DrawFn, max_depth: int = 200_000) -> str:
    """A document nested far deeper than any recursion limit, or just below it."""
    depth = draw(st.one_of(st.integers(1, 1100), st.integers(1100, max_depth)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"a":[', "]}")]))
    core = draw(st.sampled_from(['"x"', "1", "[]", "{}", ""]))
    closing = closer * depth if draw(st.booleans()) else closer * draw(st.integers(0, depth))
    return opener * depth + core + closing


def dumps(value: Any, *, compact: bool = True) -> str:
    """JSON of a generated value, as a client might write it (NaN and lone surrogates included)."""
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(value, separators=separators, ensure_ascii=not compact)


@st.composite
def mutated_text(draw: st.DrawFn, base: str, max_edits: int = 3) -> str:
    """`base` with a few random edits: insert, delete, replace, duplicate, truncate or swap a slice."""
    out = base
    for _ in range(draw(st.integers(1, max_edits))):
        size = len(out)
        at = draw(st.integers(0, size))
        end = draw(st.integers(at, min(size, at + 8)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate", "nasty"]))
        if edit == "insert":
            out = out[:at] + draw(st.text(any_char, min_size=1, max_size=4)) + out[at:]
        elif edit == "delete":
            out = out[:at] + out[end:]
        elif edit == "replace":
            out = out[:at] + draw(st.sampled_from([*'{}[]",:\\0-eE.tfn ', "\ud800"])) + out[end:]
        elif edit == "duplicate":
            out = out[:end] + out[at:end] + out[end:]
        elif edit == "truncate":
            out = out[:at]
        else:
            out = out[:at] + draw(st.sampled_from(NASTY)) + out[end:]
    return out


@st.composite
def mutated_json(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one node somewhere inside replaced by, or given, arbitrary JSON (structure-aware)."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        choice = draw(st.sampled_from(["recurse", "drop", "add", "retype"]))
        if choice == "recurse":
            out[key] = draw(mutated_json(value[key]))
        elif choice == "drop":
            del out[key]
        elif choice == "add":
            out[draw(text)] = draw(json_values)
        else:
            out[key] = draw(json_values)
        return out
    if isinstance(value, list) and value and draw(st.booleans()):
        at = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        choice = draw(st.sampled_from(["recurse", "drop", "add", "empty"]))
        if choice == "recurse":
            out_list[at] = draw(mutated_json(value[at]))
        elif choice == "drop":
            del out_list[at]
        elif choice == "add":
            out_list.insert(at, draw(json_values))
        else:
            out_list = []
        return out_list
    return draw(st.one_of(json_values, st.just(value)))
