"""The naming rules of the lifecycle resources: alias names, tags, rotation intervals, deletion windows.

Pure validation: each function returns the normalised value or raises InvalidArgument naming the
parameter. The limits are the seed's (F3.1, F3.2, F3.4, F5.3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from openkms.errors import InvalidArgument

ALIAS_PREFIX = "alias/"
SERVICE_ALIAS_PREFIX = "alias/acs/"
# The rules end in \Z, not $: $ also matches before a final newline ("alias/x\n" was accepted).
_ALIAS = re.compile(r"^alias/[A-Za-z0-9_/\-]{1,249}\Z")  # 255 characters in all, prefix included

TAG_LIMIT = 20
TAG_TEXT_LIMIT = 128
_TAG_TEXT = re.compile(r"^[A-Za-z0-9 /\\_\-.+=:@]+\Z")
_RESERVED_TAG_PREFIXES = ("aliyun", "acs:")

ROTATION_MIN_SECONDS = 7 * 86400
ROTATION_MAX_SECONDS = 365 * 86400
_INTERVAL = re.compile(r"^([0-9]{1,10})([dhms])$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

PENDING_WINDOW_MIN_DAYS = 7
PENDING_WINDOW_MAX_DAYS = 366

DESCRIPTION_LIMIT = 8192


def check_alias_name(name: str, *, parameter: str = "AliasName") -> str:
    """An alias name: `alias/` then letters, digits, `_ - /`, 255 characters at most in all."""
    if not _ALIAS.match(name):
        raise InvalidArgument(
            f"{parameter} must start with {ALIAS_PREFIX} and have 1 to 255 characters in all, "
            "of letters, digits, _, - and /.",
            parameter=parameter,
        )
    return name


def is_service_alias(name: str) -> bool:
    return name.startswith(SERVICE_ALIAS_PREFIX)


def check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= TAG_TEXT_LIMIT or not _TAG_TEXT.match(key):
        raise InvalidArgument(
            f"A tag key has 1 to {TAG_TEXT_LIMIT} characters of letters, digits, spaces "
            "and / \\ _ - . + = : @.",
            parameter="TagKey",
        )
    if key.lower().startswith(_RESERVED_TAG_PREFIXES):
        raise InvalidArgument("A tag key must not start with aliyun or acs:.", parameter="TagKey")
    return key


def check_tag_value(value: object) -> str:
    if not isinstance(value, str) or len(value) > TAG_TEXT_LIMIT or (value and not _TAG_TEXT.match(value)):
        raise InvalidArgument(
            f"A tag value has at most {TAG_TEXT_LIMIT} characters of letters, digits, spaces and "
            "/ \\ _ - . + = : @.",
            parameter="TagValue",
        )
    return value


def check_tags(pairs: Sequence[tuple[object, object]]) -> dict[str, str]:
    """Validated tags as a dict; a key given twice is refused (it would mean two things)."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        checked = check_tag_key(key)
        if checked in tags:
            raise InvalidArgument(f"The tag key {checked!r} is given twice.", parameter="TagKey")
        tags[checked] = check_tag_value(value)
    if len(tags) > TAG_LIMIT:
        raise InvalidArgument(f"At most {TAG_LIMIT} tags per call.", parameter="Tags")
    return tags


def parse_rotation_interval(raw: str, *, parameter: str = "RotationInterval") -> int:
    """`7d`, `168h`, `604800s`... as seconds, 7 to 365 days."""
    match = _INTERVAL.match(raw.strip())
    if match is None:
        raise InvalidArgument(
            f"{parameter} is a number and a unit (d, h, m or s), e.g. 30d or 2592000s.", parameter=parameter
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if not ROTATION_MIN_SECONDS <= seconds <= ROTATION_MAX_SECONDS:
        raise InvalidArgument(f"{parameter} must be between 7 and 365 days.", parameter=parameter)
    return seconds


def check_pending_window(days: int) -> int:
    if not PENDING_WINDOW_MIN_DAYS <= days <= PENDING_WINDOW_MAX_DAYS:
        raise InvalidArgument(
            f"PendingWindowInDays must be between {PENDING_WINDOW_MIN_DAYS} and {PENDING_WINDOW_MAX_DAYS}.",
            parameter="PendingWindowInDays",
        )
    return days


def check_description(description: str) -> str:
    if len(description) > DESCRIPTION_LIMIT:
        raise InvalidArgument(
            f"Description is longer than {DESCRIPTION_LIMIT} characters.", parameter="Description"
        )
    return description
