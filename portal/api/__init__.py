"""The JSON API under /api/v1, described by /api/openapi.json."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from portal.api import certificates, clients, endpoints, files, mandates, openapi  # noqa: F401  register the routes on the blueprint
    from portal.api.registry import bp

    app.register_blueprint(bp)
