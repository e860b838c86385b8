"""GetRandomPassword: a random password from the character classes the caller keeps.

Pure but for the random source, which is injected (the operating system's CSPRNG by default). The
options are Alibaba's: PasswordLength 8 to 128 (default 32), ExcludeLowercase, ExcludeUppercase,
ExcludeNumbers, ExcludePunctuation, ExcludeCharacters, RequireEachIncludedType (default true).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from random import Random

from openkms.errors import InvalidArgument

__all__ = ["PUNCTUATION", "PasswordRules", "random_password"]

PUNCTUATION = string.punctuation  # !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
LENGTH_MIN = 8
LENGTH_MAX = 128
LENGTH_DEFAULT = 32


@dataclass(frozen=True, slots=True)
class PasswordRules:
    length: int = LENGTH_DEFAULT
    exclude_lowercase: bool = False
    exclude_uppercase: bool = False
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_characters: str = ""
    require_each_included_type: bool = True

    def classes(self) -> list[str]:
        """The character classes left once exclusions apply (each with at least one character)."""
        chosen = [
            (self.exclude_lowercase, string.ascii_lowercase),
            (self.exclude_uppercase, string.ascii_uppercase),
            (self.exclude_numbers, string.digits),
            (self.exclude_punctuation, PUNCTUATION),
        ]
        banned = set(self.exclude_characters)
        kept = ["".join(c for c in chars if c not in banned) for excluded, chars in chosen if not excluded]
        return [chars for chars in kept if chars]


def random_password(rules: PasswordRules, rng: Random | None = None) -> str:
    """A password following `rules`; InvalidArgument when they leave nothing to choose from."""
    if not LENGTH_MIN <= rules.length <= LENGTH_MAX:
        raise InvalidArgument(
            f"PasswordLength must be between {LENGTH_MIN} and {LENGTH_MAX}.", parameter="PasswordLength"
        )
    classes = rules.classes()
    if not classes:
        raise InvalidArgument("The exclusions leave no character to make a password of.")
    source = rng if rng is not None else secrets.SystemRandom()
    alphabet = "".join(classes)
    chars = [source.choice(alphabet) for _ in range(rules.length)]
    if rules.require_each_included_type:
        if len(classes) > rules.length:  # pragma: no cover - four classes, eight characters at least
            raise InvalidArgument("PasswordLength is too short to include every character type.")
        # One character of each class at distinct random places; the rest stay uniform.
        places = source.sample(range(rules.length), len(classes))
        for place, chars_of_class in zip(places, classes, strict=True):
            chars[place] = source.choice(chars_of_class)
    return "".join(chars)
