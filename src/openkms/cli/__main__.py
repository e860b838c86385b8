"""`python -m openkms.cli`."""

from openkms.cli.main import run

run()
