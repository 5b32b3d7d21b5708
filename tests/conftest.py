"""Shared fixtures. The same suite runs on SQLite (default) and on PostgreSQL
when DATABASE_URL points at it (make test does both)."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.catalogue import load_catalogue
from access.clock import FrozenClock, set_clock, SystemClock
from audit.operations import RequestContext
from db import make_engine, normalise_url
from migrations.runner import upgrade

# A Monday; Belgian date 2026-11-02.
DEFAULT_NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def _test_database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return normalise_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return _test_database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(engine):
    """A session inside a transaction that is rolled back after the test; the
    code under test may commit, which only releases a savepoint."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def clock():
    """All date logic reads this clock; tests move it with clock.advance(days=...)."""
    frozen = FrozenClock(DEFAULT_NOW)
    previous = set_clock(frozen)
    yield frozen
    set_clock(previous if previous is not frozen else SystemClock())


@pytest.fixture
def catalogue():
    return load_catalogue()


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(actor_label="test", ip="127.0.0.1", user_agent="pytest", request_id="test")


@pytest.fixture
def app(db_session, clock):
    """The portal bound to the test's savepoint session: each request's commit
    releases a savepoint, its rollback returns to one."""
    from portal import create_app

    db_session.info["shared"] = True
    app = create_app({
        "TESTING": True,
        "DB_SESSION_FACTORY": lambda: db_session,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": "portal.test",
    })
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client) -> str:
    """The session's CSRF token (the same for HTML forms and the API's X-CSRFToken header)."""
    return client.get("/api/v1/session").get_json()["csrf_token"]


def login(client, login_name: str, password: str):
    """Password, then the authenticator code when the portal asks for it."""
    from urllib.parse import urlsplit

    from access.operations import find_account_by_login
    from tests.factories import next_totp_code

    token = csrf_token(client)
    response = client.post("/login", data={"login": login_name, "password": password, "csrf_token": token})
    if response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login/verify":
        session = client.application.config["DB_SESSION_FACTORY"]()
        code = next_totp_code(session, find_account_by_login(session, login_name))
        response = client.post(response.headers["Location"], data={"code": code, "csrf_token": csrf_token(client)})
    return response
