"""Browser tests: the real portal served over HTTP, driven by Debian's Chromium through Playwright.

Each test session gets its OWN database (never the one of the other tests):
a temp SQLite file, or — when DATABASE_URL points at PostgreSQL — a database
`portal_e2e_<random>` created on that server and dropped at the end.
The data a test needs is seeded through the real operations, one committed
transaction per scenario, so the browser sees it like any other data.
"""
from __future__ import annotations

import itertools
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from db import make_engine, make_session_factory, normalise_url
from migrations.runner import upgrade

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Playwright's default timeouts are 30 s; a local server answers in milliseconds.
TIMEOUT_MS = 10_000


# --- the database ------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_database_url(tmp_path_factory) -> Iterator[str]:
    """A database of our own: SQLite temp file, or a fresh database on DATABASE_URL's PostgreSQL server."""
    configured = os.environ.get("DATABASE_URL")
    if not configured or normalise_url(configured).startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'portal.sqlite3'}"
        return
    server_url = make_url(normalise_url(configured))
    if server_url.get_backend_name() != "postgresql":
        pytest.fail(f"e2e tests support SQLite and PostgreSQL, not {server_url.get_backend_name()}")
    name = f"portal_e2e_{secrets.token_hex(6)}"
    admin = make_engine(server_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT",
                        poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                # WITH (FORCE) (PostgreSQL 13+): a connection left over by a failed test must not keep it alive.
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def e2e_engine(e2e_database_url) -> Iterator[Engine]:
    engine = make_engine(e2e_database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def e2e_sessions(e2e_engine) -> sessionmaker[Session]:
    """The real session factory on the e2e database: seeding and checking what the browser did."""
    return make_session_factory(e2e_engine)


# --- the server --------------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: object

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture(scope="session")
def e2e_pki():
    """The test PKI the live server trusts (its trust list is the app's TRUST_LIST), anchored on real time
    like the server."""
    from datetime import datetime, timezone

    from tests.pki import TestPKI

    return TestPKI(datetime.now(timezone.utc))


@pytest.fixture(scope="session")
def e2e_trust_list(e2e_pki, tmp_path_factory) -> Path:
    return e2e_pki.write_trust_list(tmp_path_factory.mktemp("e2e-trust"))


@pytest.fixture(scope="session")
def live_server(e2e_database_url, e2e_engine, e2e_trust_list) -> Iterator[LiveServer]:
    """The portal on 127.0.0.1:<free port>, in a background thread, on the e2e database (already migrated),
    trusting the test PKI of `e2e_pki`."""
    from werkzeug.serving import make_server

    from access.clock import SystemClock, set_clock
    from portal import create_app

    previous_clock = set_clock(SystemClock())  # real time: another test may have left a frozen clock
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": e2e_database_url,
        "RATELIMIT_ENABLED": False,
        "SECRET_KEY": "e2e-" + secrets.token_hex(16),
        "TRUST_LIST": str(e2e_trust_list),
    })
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        engine = app.extensions.get("portal.engine")
        if engine is not None:
            engine.dispose()
        set_clock(previous_clock)


# --- the browser -------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_server):
    """A page in a fresh context (no cookies carried over), English, with console errors collected."""
    context = browser.new_context(base_url=live_server.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.console_errors = []  # CSP violations, script errors and failed sub-resources (CSS, images, ...)

    def on_console(message):
        # Chromium also logs every >= 400 response as "Failed to load resource", the 403 page under test
        # and its own /favicon.ico probe included; sub-resources are checked by on_response instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            page.console_errors.append(message.text)

    def on_response(response):
        request = response.request
        if (response.status >= 400 and request.resource_type != "document"
                and not response.url.endswith("/favicon.ico")):
            page.console_errors.append(f"{response.status} {request.resource_type} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.console_errors.append(f"page error: {error}"))
    page.on("response", on_response)
    # net::ERR_ABORTED is a request cut short by the next navigation, not a fault of the page.
    page.on("requestfailed", lambda request: "ERR_ABORTED" not in (request.failure or "") and
            page.console_errors.append(f"request failed: {request.url} {request.failure}"))
    try:
        yield page
    finally:
        context.close()


# --- the seeded data ---------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    enterprise_id: int
    enterprise_name: str
    admin_person_id: int
    admin_first_name: str
    admin_last_name: str
    admin_user_id: str
    admin_initial_password: str
    user_person_id: int
    user_username: str
    user_password: str

    @property
    def admin_full_name(self) -> str:
        return f"{self.admin_first_name} {self.admin_last_name}"


_numbers = itertools.count(1)
USER_PASSWORD = "Vlinder-Schaduw-Regen-58"


@pytest.fixture
def scenario(e2e_sessions) -> Scenario:
    """An employer, its zaakvoerder appointed local administrator (initial credential, first login pending),
    and an employee designated user with his own user name and password. Unique numbers per call, so
    tests sharing the session's database never meet each other's data."""
    from access import operations as ops
    from access.models import LinkKind, Role
    from access.passwords import hash_password
    from access.validators import make_insz, make_kbo, make_rsz
    from audit.operations import CLI_CONTEXT

    n = next(_numbers)
    with e2e_sessions.begin() as session:
        enterprise = ops.register_enterprise(
            session, kbo=make_kbo(4_200_000 + n), rsz_number=make_rsz(1_300_000 + n),
            name=f"Drukkerij Het Anker {n}", street="Havenlaan 5", postal_code="8400", city="Oostende",
            legal_form="BV", joint_committee="130", by=CLI_CONTEXT)
        admin = ops.record_person(session, insz=make_insz("810303", 2 * n + 1), first_name="Wouter",
                                  last_name=f"Verhaegen{n}", email="wouter@example.invalid", by=CLI_CONTEXT)
        ops.add_link(session, enterprise, admin, LinkKind.ZAAKVOERDER, date(2016, 4, 1), by=CLI_CONTEXT)
        user = ops.record_person(session, insz=make_insz("920717", 2 * n + 2), first_name="Lotte",
                                 last_name=f"Dewulf{n}", email="lotte@example.invalid", by=CLI_CONTEXT)
        ops.add_link(session, enterprise, user, LinkKind.WERKNEMER, date(2020, 9, 1), by=CLI_CONTEXT)

        credential = ops.appoint_local_admin(session, enterprise, admin, by=CLI_CONTEXT).credential
        assert credential is not None, "a new local administrator gets an initial credential"
        as_admin = CLI_CONTEXT.as_actor(admin.id, credential.user_id)
        ops.designate(session, enterprise, user, Role.USER, by=as_admin)
        username = f"lotte.e2e{n}"
        account = user.account  # as examples.demo.set_own_credentials does: the user already chose his own
        account.username, account.username_lower = username, username.lower()
        account.password_hash = hash_password(USER_PASSWORD)
        account.initial_password_hash = None
        account.initial_password_expires_at = None
        session.flush()
        return Scenario(
            enterprise_id=enterprise.id, enterprise_name=enterprise.name,
            admin_person_id=admin.id, admin_first_name=admin.first_name, admin_last_name=admin.last_name,
            admin_user_id=credential.user_id, admin_initial_password=credential.password,
            user_person_id=user.id, user_username=username, user_password=USER_PASSWORD)
