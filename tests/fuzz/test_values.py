"""Fuzzing the value parsers: EncryptionContext canonical form (domain/encryption_context.py), the
ciphertext parser (domain/ciphertext.py and CiphertextBlob's base64), and the name, alias and tag
validators (domain/names.py, the Tags / Tag.N / Filters parameters of api/actions)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from openkms.api.actions.crypto import _blob
from openkms.api.actions.keys import _filters
from openkms.api.actions.tags import _new_tags, parse_old_tags
from openkms.api.params import Params
from openkms.domain import names
from openkms.domain.ciphertext import MIN_BLOB_LEN, Ciphertext, header_for, parse_ciphertext
from openkms.domain.encryption_context import canonical_context
from openkms.errors import OpenKMSError
from tests.fuzz.strategies import NASTY, dumps, json_values, mutated_json, mutated_text, text, wire_text
from tests.fuzz.support import fuzz_settings, refused_or_value

anything = st.one_of(json_values, st.binary(max_size=20), st.tuples(text), st.just(object()))


# ---------------------------------------------------------------------------------- EncryptionContext


@fuzz_settings(300)
@given(
    st.dictionaries(
        st.one_of(text, st.integers(), st.none(), st.binary(max_size=4)),
        st.one_of(text, anything),
        max_size=6,
    )
)
def test_canonical_context_of_any_mapping(context: dict[Any, Any]) -> None:
    encoded = refused_or_value(lambda: canonical_context(context))
    if isinstance(encoded, bytes) and context:
        # Valid UTF-8 JSON of exactly this map, the same bytes whatever the order it came in.
        assert json.loads(encoded.decode("utf-8")) == context
        assert canonical_context(dict(reversed(list(context.items())))) == encoded


@fuzz_settings(300)
@given(st.one_of(json_values.map(dumps), st.dictionaries(text, text).map(dumps).flatmap(mutated_text)))
def test_encryption_context_parameter_to_canonical_bytes(document: str) -> None:
    parsed = refused_or_value(
        lambda: Params({"EncryptionContext": document}).json_object("EncryptionContext")
    )
    if isinstance(parsed, dict):
        refused_or_value(lambda: canonical_context(parsed))


# ------------------------------------------------------------------------------------------ ciphertext


@st.composite
def blobs(draw: st.DrawFn) -> bytes:
    valid = header_for(str(draw(st.uuids())).lower()) + draw(st.binary(min_size=12 + 16, max_size=80))  # type: ignore[arg-type]
    choice = draw(st.sampled_from(["valid", "short", "flip", "format", "random"]))
    if choice == "short":
        return valid[: draw(st.integers(0, MIN_BLOB_LEN))]
    if choice == "flip":
        out = bytearray(valid)
        out[draw(st.integers(0, len(out) - 1))] ^= draw(st.integers(1, 255))
        return bytes(out)
    if choice == "format":
        return bytes([draw(st.integers(0, 255))]) + valid[1:]
    if choice == "random":
        return draw(st.binary(max_size=100))
    return valid


@fuzz_settings(300)
@given(blobs())
def test_ciphertext_parser(blob: bytes) -> None:
    parsed = refused_or_value(lambda: parse_ciphertext(blob))
    if isinstance(parsed, Ciphertext):
        assert parsed.to_bytes() == blob
        assert str(uuid.UUID(parsed.version_id)) == parsed.version_id


@fuzz_settings(200)
@given(st.one_of(blobs().map(lambda b: base64.b64encode(b).decode()).flatmap(mutated_text), wire_text))
def test_ciphertext_blob_parameter(value: str) -> None:
    raw = refused_or_value(lambda: _blob(Params({"CiphertextBlob": value})))
    if isinstance(raw, bytes):
        refused_or_value(lambda: parse_ciphertext(raw))


# -------------------------------------------------------------------------------- names, aliases, tags

_ALIAS = re.compile(r"alias/[A-Za-z0-9_/\-]{1,249}")
_TAG = re.compile(r"[A-Za-z0-9 /\\_\-.+=:@]{1,128}")


@fuzz_settings(300)
@given(st.one_of(text, st.from_regex(_ALIAS, fullmatch=True), text.map(lambda t: "alias/" + t)))
def test_alias_names(name: str) -> None:
    checked = refused_or_value(lambda: names.check_alias_name(name))
    if isinstance(checked, str):
        assert _ALIAS.fullmatch(checked), checked  # "$" in the rule also matched before a final "\n"


@fuzz_settings(300)
@given(st.one_of(text, anything, st.from_regex(_TAG, fullmatch=True)), st.one_of(text, anything))
def test_tag_keys_and_values(key: object, value: object) -> None:
    checked = refused_or_value(lambda: names.check_tags([(key, value)]))
    if isinstance(checked, dict):
        [(k, v)] = checked.items()
        assert _TAG.fullmatch(k) and not k.lower().startswith(("aliyun", "acs:"))
        assert v == "" or _TAG.fullmatch(v)


@fuzz_settings(200)
@given(
    st.one_of(text, st.integers(0, 10**12).map(lambda n: f"{n}d"), st.sampled_from(["7d", "365d", "8760h"]))
)
def test_rotation_interval_and_other_limits(raw: str) -> None:
    seconds = refused_or_value(lambda: names.parse_rotation_interval(raw))
    if isinstance(seconds, int):
        assert names.ROTATION_MIN_SECONDS <= seconds <= names.ROTATION_MAX_SECONDS
    refused_or_value(lambda: names.check_description(raw))


VALID_TAGS = [{"TagKey": "team", "TagValue": "a"}, {"TagKey": "env"}]


@fuzz_settings(300)
@given(st.one_of(json_values, mutated_json(VALID_TAGS), mutated_json(VALID_TAGS).flatmap(mutated_json)))
def test_tags_parameter(value: Any) -> None:
    tags = refused_or_value(lambda: parse_old_tags(Params({"Tags": dumps(value)})))
    if isinstance(tags, dict):
        assert len(tags) <= names.TAG_LIMIT


@fuzz_settings(200)
@given(
    st.dictionaries(
        st.builds(
            "Tag.{}.{}".format,
            st.sampled_from(["1", "2", "3", "0", "01", "x"]),
            st.sampled_from(["Key", "Value", "Other", ""]),
        ),
        wire_text,
        max_size=6,
    )
)
def test_tag_records(raw: dict[str, str]) -> None:
    pairs = refused_or_value(lambda: _new_tags(Params(raw)))
    if isinstance(pairs, list):
        refused_or_value(lambda: names.check_tags(pairs))


VALID_FILTERS = [{"Key": "KeyState", "Values": ["Enabled"]}, {"Key": "KeySpec", "Values": ["Aliyun_AES_256"]}]


@fuzz_settings(200)
@given(st.one_of(json_values, mutated_json(VALID_FILTERS)))
def test_list_keys_filters(value: Any) -> None:
    refused_or_value(lambda: _filters(Params({"Filters": dumps(value)})))


@fuzz_settings(100)
@given(st.sampled_from(NASTY))
def test_nasty_strings_everywhere(value: str) -> None:
    for check in (
        names.check_alias_name,
        names.check_tag_key,
        names.check_tag_value,
        names.parse_rotation_interval,
    ):
        outcome = refused_or_value(lambda check=check: check(value))
        assert isinstance(outcome, OpenKMSError | str | int)


def test_a_final_newline_is_no_part_of_a_name() -> None:
    """`$` also matches before a final newline: these were all accepted, and "kms:Decrypt\\n" in a
    Deny statement parsed but never matched kms:Decrypt (a policy meaning less than it says)."""
    from openkms.domain.csr import _EMAIL
    from openkms.domain.key_import import _TOKEN
    from openkms.policy.document import PolicyKind, parse_policy
    from openkms.service.keys import _ALIAS_ARN, _KEY_ARN
    from openkms.service.ram import POLICY_NAME, ROLE_NAME, USER_NAME
    from openkms.service.service_keys import _SERVICE
    from openkms.service.sts import ROLE_ARN, SESSION_NAME

    for check in (names.check_alias_name, names.check_tag_key, names.check_tag_value):
        outcome = refused_or_value(lambda check=check: check("alias/team\n"))
        assert isinstance(outcome, OpenKMSError), check
    for statement in (
        {
            "Effect": "Deny",
            "Action": "kms:Decrypt\n",
            "Resource": "*",
            "Principal": {"RAM": ["acs:ram::1:*"]},
        },
        {"Effect": "Deny", "Action": "*\n", "Resource": "*", "Principal": {"RAM": ["acs:ram::1:*"]}},
        {
            "Effect": "Deny",
            "Action": "kms:*",
            "Resource": "*",
            "Principal": {"RAM": ["acs:ram::1:user/bob\n"]},
        },
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*", "Principal": {"RAM": ["*\n"]}},
        {"Sid": "s\n", "Effect": "Deny", "Action": "kms:*", "Resource": "*", "Principal": {"RAM": ["*"]}},
    ):
        document = dumps({"Version": "1", "Statement": [statement]})
        assert isinstance(
            refused_or_value(lambda document=document: parse_policy(document, PolicyKind.KEY)), OpenKMSError
        )
    token = "OKI1." + "0" * 32 + "." + "A" * 43
    for pattern, value in (
        (USER_NAME, "bob"),
        (ROLE_NAME, "admin"),
        (POLICY_NAME, "p1"),
        (SESSION_NAME, "s1"),
        (ROLE_ARN, "acs:ram::123:role/admin"),
        (_SERVICE, "ecs"),
        (_KEY_ARN, "acs:kms:cn-hangzhou:123:key/key-1"),
        (_ALIAS_ARN, "acs:kms:cn-hangzhou:123:alias/a"),
        (_TOKEN, token),
        (_EMAIL, "a@b.cn"),
    ):
        assert pattern.match(value) and not pattern.match(value + "\n"), pattern.pattern
