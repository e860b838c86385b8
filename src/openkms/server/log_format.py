"""How the processes of `openkms serve` write their logs: text lines (the default) or JSON lines.

Owns the logging configuration handed to uvicorn, and so to every worker process, and the console
that turns `serve`'s own messages into log records in JSON mode, so that every line on stderr is one
JSON object (`log_format = "json"`: time, level, logger, message, and the traceback as `exc_info`).
It only shapes what the code logs; what is logged, never a secret, is each module's concern.
"""

from __future__ import annotations

import io
import logging
import logging.config
from typing import IO, Any, cast

from pythonjsonlogger.core import RESERVED_ATTRS
from rich.console import Console

from openkms.config import LogFormat

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(log_format: LogFormat, level: str) -> dict[str, Any] | None:
    """The `logging.config.dictConfig` document for uvicorn's `log_config`; None keeps uvicorn's own
    text configuration (and the text lines of `configure`)."""
    if log_format == "text":
        return None
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
                # uvicorn adds a copy of some messages with terminal colour codes: left out.
                "reserved_attrs": [*RESERVED_ATTRS, "color_message", "taskName"],
            }
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's loggers write through the root's handler instead of their own text ones.
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(log_format: LogFormat, level: str) -> None:
    """Set up this process's logging (the `serve` supervisor, a worker started by hand)."""
    document = logging_config(log_format, level)
    if document is None:
        logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
        return
    logging.config.dictConfig(document)
    logging.captureWarnings(True)  # a warning is a log record too, not a bare line on stderr


class _LogLines(io.TextIOBase):
    """A text stream that logs each complete line it is given as one INFO record."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._logger.info("%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._partial.strip():
            self._logger.info("%s", self._partial.rstrip())
        self._partial = ""


def messages_console(log_format: LogFormat, console: Console) -> Console:
    """Where `serve` prints its own messages: `console` for text, a console whose lines become log
    records (markup and colour stripped) for JSON."""
    if log_format == "text":
        return console
    return Console(
        file=cast(IO[str], _LogLines(logging.getLogger("openkms.serve"))),
        soft_wrap=True,
        no_color=True,
        highlight=False,
        force_terminal=False,
    )
