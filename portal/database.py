"""One database session per request and the one place where it commits.

A request that ends in a 4xx or 5xx is rolled back whole; audit records marked
to survive (denied decisions, failed logins) are then written on their own.
Side effects that must follow a commit register with `after_commit`.
"""
from __future__ import annotations

from typing import Callable

from flask import Flask, g
from sqlalchemy.orm import Session

from audit.operations import SURVIVORS_KEY, replay_survivors
from audit.settings import AuditSettings, with_audit_settings
from db import make_engine, make_session_factory


def init_app(app: Flask) -> None:
    factory = app.config.get("DB_SESSION_FACTORY")
    if factory is None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["portal.engine"] = engine
        factory = make_session_factory(engine)
    # Every session (web and CLI) carries the audit settings: checkpoint key and interval, sink.
    settings = AuditSettings.from_config(app.config, app.instance_path)
    app.extensions["portal.audit_settings"] = settings
    app.extensions["portal.session_factory"] = with_audit_settings(factory, settings)

    @app.after_request
    def _finish(response):
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return response
        try:
            if response.status_code < 400:
                session.commit()
            else:
                _rollback_keeping_survivors(session)
        except Exception:
            session.rollback()
            _close(session)
            raise
        _close(session)
        for callback in g.pop("after_commit", []):
            callback()
        return response

    @app.teardown_request
    def _teardown(exc):  # an exception escaped: after_request may not have run
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            _rollback_keeping_survivors(session)
            _close(session)


def _rollback_keeping_survivors(session: Session) -> None:
    survivors = session.info.pop(SURVIVORS_KEY, [])
    session.rollback()
    if survivors:
        replay_survivors(session, survivors)
        session.commit()


def _close(session: Session) -> None:
    session.info.pop(SURVIVORS_KEY, None)
    if not session.info.get("shared"):
        session.close()


def get_session() -> Session:
    if "db_session" not in g:
        from flask import current_app

        session = current_app.extensions["portal.session_factory"]()
        session.info.pop(SURVIVORS_KEY, None)
        g.db_session = session
    return g.db_session


def after_commit(callback: Callable[[], None]) -> None:
    g.setdefault("after_commit", []).append(callback)
