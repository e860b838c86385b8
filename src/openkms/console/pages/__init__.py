"""The console's pages, one module per area of the guide; each exports ROUTES."""

from __future__ import annotations

from starlette.routing import BaseRoute

from openkms.console.pages import (
    app_access,
    audit,
    create_key,
    instances,
    key_details,
    keys,
    ram,
    secret_details,
    secrets,
)

ROUTES: list[BaseRoute] = [
    *create_key.ROUTES,
    *keys.ROUTES,
    *key_details.ROUTES,
    *instances.ROUTES,
    *ram.ROUTES,
    *secrets.ROUTES,
    *secret_details.ROUTES,
    *app_access.ROUTES,
    *audit.ROUTES,
]
