"""The console's static files: htmx is the file VENDORED.md names; nothing needs inline code."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "src" / "openkms" / "console" / "static"


def test_the_vendored_htmx_is_the_file_named_in_vendored_md() -> None:
    vendored = (STATIC / "VENDORED.md").read_text(encoding="utf-8")
    row = next(line for line in vendored.splitlines() if line.startswith("| `htmx.min.js`"))
    named = re.findall(r"`([0-9a-f]{64})`", row)
    assert named == [hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest()]
    assert (STATIC / "htmx.LICENSE.txt").read_text(encoding="utf-8").startswith("Zero-Clause BSD")


def test_console_js_evaluates_nothing_and_writes_no_inline_style() -> None:
    script = (STATIC / "console.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/", "", script, flags=re.S)  # the header comment names what is not done
    for forbidden in ("eval(", "new Function", "innerHTML", ".style.", 'setAttribute("style"', "javascript:"):
        assert forbidden not in code, forbidden


def test_the_stylesheet_loads_nothing_from_elsewhere() -> None:
    css = (STATIC / "console.css").read_text(encoding="utf-8")
    assert "@import" not in css
    assert "@font-face" not in css
    assert "url(" not in css
