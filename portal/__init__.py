"""The web layer: the application factory and its extensions."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from werkzeug.routing import IntegerConverter

ROOT = Path(__file__).resolve().parent.parent
MAX_ID = 2**31 - 1  # PostgreSQL's integer primary keys

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "CATALOGUE_PATH": None,
    "LANGUAGES": ["nl", "fr", "en"],
    "BABEL_DEFAULT_LOCALE": "nl",
    "BABEL_DEFAULT_TIMEZONE": "Europe/Brussels",
    "INITIAL_PASSWORD_DAYS": 14,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_BASE_LOCK_SECONDS": 60,
    "LOGIN_MAX_LOCK_SECONDS": 900,
    # Failed attempts per address (access/throttle.py): free ones per hour, then a wait from BASE
    # seconds doubling per failure up to MAX. Plus a plain request rate limit on the login steps.
    "LOGIN_IP_FREE_FAILURES": 20,
    "LOGIN_IP_BASE_SECONDS": 30,
    "LOGIN_IP_MAX_SECONDS": 3600,
    "LOGIN_RATE_LIMIT": "20 per minute",
    # Server-side sessions (access/sessions.py): idle and absolute timeouts.
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_HOURS": 12,
    # The second factor: always for administrators, officers and provider staff; for plain users too
    # unless this is false. Step-up: how recent the last check must be for a protected act (minutes).
    "SECOND_FACTOR_FOR_EVERYONE": True,
    "STEP_UP_MINUTES": 5,
    "STEP_UP_ACTIONS": None,  # path of the list of protected acts (TOML); default config/step_up.toml
    "TOTP_ISSUER": "Portaal sociale zekerheid",
    # WebAuthn relying party: the host name and origin the browser sees (default: from the request).
    "WEBAUTHN_RP_ID": None,
    "WEBAUTHN_ORIGIN": None,
    "API_RATE_LIMIT": "600 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "API_MAX_JSON_BYTES": 64 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,  # set PORTAL_SESSION_COOKIE_SECURE=true behind HTTPS
    "SESSION_COOKIE_NAME": "portal_session",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "FROZEN_TIME": None,  # ISO timestamp: run the whole portal at this moment (demo)
    "TIME_OFFSET_DAYS": None,
    "TRUST_LIST": None,  # path of the QTSP trust list (TOML); default config/trust-list.toml
    # The audit trail (audit/settings.py): the Ed25519 key that signs the chain's checkpoints (None:
    # instance/audit_signing_key.pem if present, written by make run; "": none), a checkpoint every
    # that many records, and a copy of every record outside the database.
    "AUDIT_SIGNING_KEY": None,
    "AUDIT_CHECKPOINT_EVERY": 10_000,
    "AUDIT_CHECKPOINT_MINUTES": 60,  # and one an hour after the last (audit/settings.py)
    "AUDIT_SINK": "",  # "" | "jsonl:/path/file.jsonl" | "syslog"
    "AUDIT_SINK_FSYNC": False,
    "ALERT_RULES": None,  # path of the alert rules (TOML); default config/alerts.toml (audit/alerts.py)
    "AUDIT_RETENTION": None,  # path of the retention periods (TOML); default config/retention.toml
    # An export of the audit trail holding more records than this needs an explicit confirmation
    # (audit/export.py); every export is itself audit-logged.
    "AUDIT_EXPORT_CAP": 100_000,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder="static",
                instance_path=str(ROOT / "instance"), instance_relative_config=True)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    if not app.config["DATABASE_URL"]:
        from db import database_url_from_env

        app.config["DATABASE_URL"] = database_url_from_env()
    if config:
        app.config.update(config)
    _load_secret_key(app)
    _set_clock(app)
    _load_alert_rules(app)
    app.url_map.converters["int"] = DatabaseId

    from portal import database, extensions, i18n, security

    database.init_app(app)
    extensions.init_app(app)
    i18n.init_app(app)
    security.init_app(app)

    from portal import cli, errors
    from portal.views import (account, admin, apps, audit, audit_alerts, audit_subject, audit_verify, certificates,
                              home, mandates, officer, repertory, reviews, security)
    from portal.api import init_app as init_api

    for blueprint in (account.bp, home.bp, officer.bp, admin.bp, apps.bp, repertory.bp, mandates.bp,
                      certificates.bp, audit.bp, audit_alerts.bp, audit_verify.bp, audit_subject.bp, reviews.bp,
                      security.bp):
        app.register_blueprint(blueprint)
    init_api(app)
    from portal import oauth

    oauth.init_app(app)  # the token endpoint; bearer tokens on /api/v1 (and the CSRF check they skip)
    errors.init_app(app)
    cli.init_app(app)
    return app


class DatabaseId(IntegerConverter):
    """`<int:…>` in a route is a row id: beyond the database's integer range it
    matches nothing (404) instead of overflowing the driver."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def _load_secret_key(app: Flask) -> None:
    if app.config["SECRET_KEY"]:
        return
    key_file = Path(app.instance_path) / "secret_key"
    if key_file.exists():
        app.config["SECRET_KEY"] = key_file.read_text().strip()
    elif app.config.get("TESTING"):
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    else:
        raise RuntimeError(
            "No secret key: set PORTAL_SECRET_KEY or write one to instance/secret_key (make run does this).")


def _set_clock(app: Flask) -> None:
    from access.clock import FrozenClock, OffsetClock, set_clock

    if app.config.get("FROZEN_TIME"):
        moment = datetime.fromisoformat(app.config["FROZEN_TIME"])
        set_clock(FrozenClock(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)))
    elif app.config.get("TIME_OFFSET_DAYS"):
        set_clock(OffsetClock(timedelta(days=float(app.config["TIME_OFFSET_DAYS"]))))


def _load_alert_rules(app: Flask) -> None:
    """Read and check config/alerts.toml (or ALERT_RULES) now: a wrong rules file stops the start."""
    from audit.alerts import AlertConfigError, load_rules

    try:
        app.extensions["portal.alert_rules"] = load_rules(app.config.get("ALERT_RULES"))
    except AlertConfigError as error:
        raise RuntimeError(f"The alert rules are wrong: {error}") from None
