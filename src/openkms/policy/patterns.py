"""Wildcard patterns of policy documents: `*` matches any run of characters, `?` exactly one.

Actions compare case-insensitively (`kms:list*` matches `kms:ListKeys`); resources and principals
compare exactly. Compiled patterns are cached: a deployment has few distinct patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache


def _segment(text: str) -> str:
    return "".join("." if ch == "?" else re.escape(ch) for ch in text)


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # Policy authors write the patterns and callers choose much of the text (tag values, names), so
    # the match must not backtrack: a plain `.*a.*a.*a...b` takes time growing as the text's length to
    # the power of the number of stars on a run of "a"s (minutes for ten stars and 128 characters).
    # Each segment between two stars is matched at its first occurrence, inside an atomic group that
    # is never re-entered: segments have a fixed length, so the earliest match is always a safe choice
    # (it leaves the most text for the rest). Exact, and linear in the text for each segment.
    parts = pattern.split("*")
    body = _segment(parts[0])
    if len(parts) > 1:
        body += "".join(f"(?>.*?{_segment(part)})" for part in parts[1:-1]) + ".*" + _segment(parts[-1])
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
