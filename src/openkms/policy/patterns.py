"""Wildcard patterns of policy documents: `*` matches any run of characters, `?` exactly one.

Actions compare case-insensitively (`kms:list*` matches `kms:ListKeys`); resources and principals
compare exactly. Compiled patterns are cached: a deployment has few distinct patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True when `value` matches the whole of `pattern`."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _compiled(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """`kms:Encrypt`, `kms:List*`, `kms:*` or `*` against an action such as `kms:ListKeys`."""
    return matches(pattern, action, ignore_case=True)
