"""GetRandomPassword's rules (domain/random_password.py), with a seeded random source."""

from __future__ import annotations

import string
from random import Random

import pytest

from openkms.domain.random_password import PUNCTUATION, PasswordRules, random_password
from openkms.errors import InvalidArgument


def test_default_is_32_characters_of_every_class() -> None:
    for seed in range(200):
        password = random_password(PasswordRules(), Random(seed))
        assert len(password) == 32
        for chars in (string.ascii_lowercase, string.ascii_uppercase, string.digits, PUNCTUATION):
            assert set(password) & set(chars), (seed, password)


def test_exclusions_hold() -> None:
    rules = PasswordRules(
        length=8, exclude_punctuation=True, exclude_uppercase=True, exclude_characters="aeiou0"
    )
    for seed in range(200):
        password = random_password(rules, Random(seed))
        assert len(password) == 8
        assert set(password) <= set(string.ascii_lowercase + string.digits) - set("aeiou0")
        assert set(password) & set(string.digits) and set(password) & set(string.ascii_lowercase)


def test_without_each_type_any_mix_is_allowed() -> None:
    rules = PasswordRules(length=128, require_each_included_type=False, exclude_numbers=True)
    password = random_password(rules, Random(1))
    assert len(password) == 128 and not set(password) & set(string.digits)


@pytest.mark.parametrize(
    "rules",
    [
        PasswordRules(length=7),
        PasswordRules(length=129),
        PasswordRules(
            exclude_lowercase=True, exclude_uppercase=True, exclude_numbers=True, exclude_punctuation=True
        ),
        PasswordRules(
            exclude_lowercase=True,
            exclude_uppercase=True,
            exclude_punctuation=True,
            exclude_characters=string.digits,
        ),
    ],
)
def test_rules_that_leave_nothing_are_refused(rules: PasswordRules) -> None:
    with pytest.raises(InvalidArgument):
        random_password(rules, Random(0))
