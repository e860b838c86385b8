"""How `openkms` commands print: tables on stdout with every cell taken as plain text (Rich never reads
markup or `:emoji:` codes in data such as `acs:ram::123:root`), JSON documents for `--json`, and a
refusal as one line on stderr with its code and a hint, never a traceback. Prints no secret it was
not asked to print."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from openkms.cli.common import console as stderr


def _stdout() -> Console:
    """stdout as it is now (CliRunner swaps it); a pipe gets whole lines up to 200 columns rather
    than the 80 Rich assumes when it cannot ask a terminal."""
    return Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)


def cell(value: object) -> Text:
    """A table cell: the value's text as is (None and "" as "-")."""
    if value is None or value == "":
        return Text("-")
    return Text(str(value))


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> None:
    """One table on stdout; a title and headers are ours, every cell is data and is never parsed."""
    table = Table(title=None if title is None else Text(title), highlight=False)
    for column in columns:
        table.add_column(Text(column), overflow="fold")  # ids wrap whole, never cut to "…"
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    _stdout().print(table)


def print_fields(pairs: Iterable[tuple[str, object]]) -> None:
    """A two-column table of name and value (one record, e.g. DescribeKey)."""
    print_table(("Field", "Value"), [(name, value) for name, value in pairs])


def print_json(document: Mapping[str, object] | Sequence[object]) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False))


def note(message: str) -> None:
    """A line for the person at the terminal (stderr, so that stdout stays the command's output)."""
    stderr.print(Text(message))


def error_line(code: str, message: str, hint: str | None = None, *, label: str = "error") -> None:
    """`error <Code>: <message> (hint: ...)`, one line on stderr (`label` in place of "error", e.g.
    "refused" for an operator request the service turned down)."""
    line = Text(f"{label} ", style="bold red")
    line.append(f"{code}: ", style="bold")
    line.append(" ".join(message.split()))
    if hint:
        line.append(f" (hint: {hint})", style="yellow")
    stderr.print(line)


def fail(
    code: str, message: str, hint: str | None = None, *, status: int = 1, label: str = "error"
) -> NoReturn:
    """Refuse with the error line, then exit `status`."""
    error_line(code, message, hint, label=label)
    raise typer.Exit(status)
