"""The JSON API under /api/v1, described by /api/openapi.json."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Importing a module registers its routes on the blueprint (portal/api/registry.py).
    from portal.api import (audit, audit_alerts, audit_subject, audit_verify, certificates, clients,  # noqa: F401
                            endpoints, files, mandates, openapi, reviews, account_security)
    from portal.api.registry import bp

    app.register_blueprint(bp)
