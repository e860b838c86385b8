"""Identifier formats: request ids are Alibaba's upper-case version 4 UUIDs."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.service import ids


def test_request_ids_are_upper_case_version_4_uuids() -> None:
    made = {ids.new_request_id() for _ in range(2000)}
    assert len(made) == 2000
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed).upper() == text


@settings(max_examples=500)
@given(st.binary(min_size=16, max_size=16))
def test_request_id_formatting_matches_uuid4_for_any_random_bytes(raw: bytes) -> None:
    assert ids.request_id_from(raw) == str(uuid.UUID(bytes=raw, version=4)).upper()
