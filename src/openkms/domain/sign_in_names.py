"""Console sign-in names and account aliases: Alibaba's forms, parsed; pure rules, no I/O.

A RAM user signs in as `<user>@<account uid or alias>`, with or without the `.onaliyun.com` suffix
(`alice@1234567890123456.onaliyun.com`, `alice@example-corp`); an account's root signs in with its uid
alone (or its alias alone). Domains are case-insensitive; user names are kept as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openkms.errors import InvalidArgument

DOMAIN_SUFFIX = ".onaliyun.com"
_UID = re.compile(r"^[0-9]{1,20}\Z")
# Alibaba's alias rule: 3 to 32 lowercase letters, digits and hyphens, not starting or ending with a
# hyphen. OpenKMS also refuses an all-digit alias, which would read as an account uid.
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]\Z")
_USER = re.compile(r"^[A-Za-z0-9._@-]{1,64}\Z")
MAX_SIGN_IN_NAME = 255


@dataclass(frozen=True, slots=True)
class SignInName:
    """A parsed sign-in name: which account (by uid or alias) and whose name in it."""

    domain: str  # an account uid or alias, lowercased, without the suffix
    user_name: str | None  # None: the account's root

    @property
    def by_uid(self) -> bool:
        return bool(_UID.match(self.domain))

    def normalised(self) -> str:
        """The canonical spelling: `<uid-or-alias>` for a root, `<user>@<uid-or-alias>.onaliyun.com`."""
        if self.user_name is None:
            return self.domain
        return f"{self.user_name}@{self.domain}{DOMAIN_SUFFIX}"


def parse_sign_in_name(text: str) -> SignInName | None:
    """The sign-in name typed, or None when it cannot be one (the caller answers as for a wrong one)."""
    text = text.strip()
    if not text or len(text) > MAX_SIGN_IN_NAME:
        return None
    user, at, domain = text.rpartition("@")
    if not at:
        user, domain = "", text
    domain = domain.lower()
    if domain.endswith(DOMAIN_SUFFIX):
        domain = domain.removesuffix(DOMAIN_SUFFIX)
    if not (_UID.match(domain) or is_valid_alias(domain)):
        return None
    if not at:
        return SignInName(domain, None)
    if not _USER.match(user):
        return None
    return SignInName(domain, user)


def is_valid_alias(alias: str) -> bool:
    return bool(_ALIAS.match(alias)) and "--" not in alias and not alias.isdigit()


def check_alias(alias: str) -> str:
    """The alias if it follows the rule, else InvalidArgument naming AccountAlias."""
    if not is_valid_alias(alias):
        raise InvalidArgument(
            "The AccountAlias must be 3 to 32 lowercase letters, digits or hyphens, not start or end "
            "with a hyphen, not hold two hyphens in a row, and not be all digits.",
            parameter="AccountAlias",
        )
    return alias
