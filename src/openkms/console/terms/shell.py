"""Words of the console's frame (top bar) that are not in the guide."""

from __future__ import annotations

TERMS: dict[str, tuple[str, str]] = {
    "top.switch_region": ("Switch Region", "切换地域"),
}
