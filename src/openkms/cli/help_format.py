"""How `--help` shows options: a flag (an option that takes no value, `--json`, `--help`) gets no type
label. Typer labels every option with its Python type, so flags read `--json <bool>`, as if they took
a value. Imported once by `cli/main.py`, before any help is printed."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_typed_label = TyperOption.display_type_rich


def _label(option: TyperOption, ctx: Any) -> str | None:
    if option.is_flag and not option.count:
        return None
    return _typed_label(option, ctx)


TyperOption.display_type_rich = _label  # type: ignore[method-assign,assignment]
