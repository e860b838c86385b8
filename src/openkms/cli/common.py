"""What every `openkms` command shares: the data-dir, database and config options, loading the
settings the way the server does, opening the unsealed runtime, and refusing with the reason."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from openkms.config import ConfigError, Settings, load_settings
from openkms.errors import OpenKMSError

if TYPE_CHECKING:
    from openkms.server.runtime import Runtime

console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder for the database, key file, audit log.")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (OPENKMS_* variables override).")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL; default: SQLite in the data dir.")
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    from openkms.cli.output import fail

    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        fail("InvalidConfiguration", str(exc), "`openkms serve --help` and the README list the settings",
             status=2, label="configuration error")  # fmt: skip


def refuse(exc: OpenKMSError) -> NoReturn:
    """The one line of an operator request the service refused: its Alibaba Code and message."""
    from openkms.api.wire_errors import to_wire
    from openkms.cli.output import fail

    fail(to_wire(exc).code, exc.message, label="refused")


@contextlib.contextmanager
def _runtime(settings: Settings, passphrase: str | None = None) -> Iterator[Runtime]:
    """The unsealed runtime of one admin command (`server/runtime.py`); exit 1 with the reason if the
    store cannot be opened."""
    from openkms.server.runtime import open_runtime

    try:
        with open_runtime(settings, passphrase=passphrase) as runtime:
            yield runtime
    except OpenKMSError as exc:
        refuse(exc)


def _admin_call(action: Callable[[], T]) -> T:
    try:
        return action()
    except OpenKMSError as exc:
        refuse(exc)
