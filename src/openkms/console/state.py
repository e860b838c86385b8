"""What the console needs from the server, built once per worker by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openkms.config import Settings
from openkms.console.password_lane import PasswordLane
from openkms.console.terms import TERMS
from openkms.node.rate_limits import SharedRateLimiter
from openkms.service.container import Services
from openkms.service.runner import Runner

PREFIX = "/console"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class ConsoleState:
    services: Services
    runner: Runner
    settings: Settings
    templates: Environment
    passwords: PasswordLane  # sign-in's password checks, off the API's thread pool
    limits: SharedRateLimiter | None = None  # the node's tenant rate limits (None: not charged)


def templates() -> Environment:
    """Jinja2 with autoescaping on for every template: whatever a user typed renders as text."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.globals["known_terms"] = TERMS
    return environment
