"""Console password hashing (Argon2id PHC strings) and the password rules."""

from __future__ import annotations

import pytest

from openkms.errors import PasswordPolicyViolation
from openkms.service.passwords import (
    MEMORY_KIB,
    check_rules,
    generate_password,
    hash_password,
    verify_password,
)


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("Correct-Horse-9")
    assert encoded.startswith(f"$argon2id$v=19$m={MEMORY_KIB},t=2,p=1$")
    assert "Correct-Horse-9" not in encoded
    assert verify_password("Correct-Horse-9", encoded)
    assert not verify_password("Correct-Horse-8", encoded)
    assert not verify_password("", encoded)


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("Same-Password-1") != hash_password("Same-Password-1")


def test_a_malformed_stored_hash_verifies_nothing() -> None:
    assert not verify_password("Anything-1", "not a phc string")
    encoded = hash_password("Tampered-1")
    assert not verify_password("Tampered-1", encoded[:-4] + "AAAA")


@pytest.mark.parametrize(
    ("password", "needs"),
    [
        ("Short1a", "8 to 32"),
        ("A1" + "a" * 31, "8 to 32"),
        ("alllowercase1", "an uppercase letter"),
        ("ALLUPPERCASE1", "a lowercase letter"),
        ("NoDigitsHere", "a digit"),
        ("nodigitsnoupper", "an uppercase letter, a digit"),
        ("Ünicode-Pass1", "ASCII"),
        ("Space in Pass1", "ASCII"),
    ],
)
def test_the_rules_refuse_and_name_the_rule(password: str, needs: str) -> None:
    with pytest.raises(PasswordPolicyViolation) as caught:
        check_rules(password)
    assert needs in caught.value.message
    assert password not in caught.value.message
    assert caught.value.parameter == "Password"


@pytest.mark.parametrize(
    "password", ["Abcdefg1", "A1" + "b" * 30, "Tr0ub4dor&3", "P@ss w0rd".replace(" ", "~")]
)
def test_the_rules_accept(password: str) -> None:
    assert check_rules(password) == password


def test_generated_passwords_meet_the_rules_and_differ() -> None:
    made = {generate_password() for _ in range(20)}
    assert len(made) == 20
    for password in made:
        assert check_rules(password) == password and len(password) == 24
