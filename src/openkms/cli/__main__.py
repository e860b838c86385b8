"""`python -m openkms.cli`."""

from openkms.cli.main import app

app()
