"""The pure pieces of the key details page: the key policy's three lists read and replaced, the
wrapping public key as PEM, the material expiry date, the uploaded material's encoding."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openkms.console.pages.key_details import policy_lists, with_lists
from openkms.console.pages.key_details_tabs import material_base64, material_expiry, pem_of
from openkms.policy.document import PolicyKind, parse_policy
from openkms.policy.key_policy import (
    ADMINISTRATORS_SID,
    OTHER_ACCOUNT_USERS_SID,
    USERS_SID,
    custom_key_policy,
    default_key_policy,
    shared_instance_key_policy,
)

ACCOUNT = "1234567890123456"
ALICE = f"acs:ram::{ACCOUNT}:user/alice"
OPS = f"acs:ram::{ACCOUNT}:role/ops"
BOB = "acs:ram::9999999999999999:user/bob"


def _lists(admins: list[str], users: list[str], others: list[str]) -> dict[str, list[str]]:
    return {ADMINISTRATORS_SID: admins, USERS_SID: users, OTHER_ACCOUNT_USERS_SID: others}


def test_the_three_lists_are_read_from_a_custom_policy() -> None:
    document = custom_key_policy(ACCOUNT, [ALICE], [OPS, ALICE], [BOB])
    assert policy_lists(document) == _lists([ALICE], [OPS, ALICE], [BOB])
    assert policy_lists(default_key_policy(ACCOUNT)) == _lists([], [], [])
    assert policy_lists("{not json") == _lists([], [], [])


def test_replacing_the_lists_keeps_every_other_statement() -> None:
    owner = "7777777777777777"
    before = shared_instance_key_policy(ACCOUNT, owner)
    after = with_lists(before, ACCOUNT, _lists([ALICE], [], [BOB]))
    statements = json.loads(after)["Statement"]
    assert [item["Sid"] for item in statements] == [
        item["Sid"] for item in json.loads(before)["Statement"]
    ] + [ADMINISTRATORS_SID, OTHER_ACCOUNT_USERS_SID]
    assert policy_lists(after) == _lists([ALICE], [], [BOB])
    parse_policy(after, PolicyKind.KEY)  # a policy the API accepts
    # emptied lists drop their statements; the rest stays exactly as it was
    assert json.loads(with_lists(after, ACCOUNT, _lists([], [], []))) == json.loads(before)


def test_pem_of_the_wrapping_public_key_loads_as_the_same_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = pem_of(base64.b64encode(der).decode())
    assert all(len(line) <= 64 for line in pem.splitlines())
    loaded = serialization.load_pem_public_key(pem.encode())
    assert loaded.public_numbers() == key.public_numbers()  # type: ignore[union-attr]


def test_expiry_date_is_its_midnight_utc_and_anything_else_goes_to_the_api() -> None:
    assert material_expiry("") is None
    assert material_expiry("2030-01-02") == "1893542400"
    assert material_expiry("tomorrow") == "tomorrow"  # the API refuses it with its own message


def test_an_uploaded_file_is_sent_as_base64_whether_raw_or_already_encoded() -> None:
    raw = bytes(range(256))
    wrapped = base64.b64encode(raw)
    assert material_base64(raw) == wrapped.decode()
    assert material_base64(wrapped + b"\n") == wrapped.decode()
    assert material_base64(b" QU JD\n") == "QUJD"
    assert material_base64(b"") == ""
