"""Fixtures of the functional tests: HTML and JSON API through the test client,
against the app of tests/conftest.py (one savepoint session, frozen clock)."""
from __future__ import annotations

import pytest

from tests.functional.helpers import Visitor, World


@pytest.fixture
def world(db_session, clock) -> World:
    return World(db_session)


@pytest.fixture
def visitor(app):
    """`visitor()` opens a new browser (its own cookie jar) on the test app."""

    def make(**kwargs) -> Visitor:
        return Visitor(app, **kwargs)

    return make


@pytest.fixture
def officer(world):
    return world.officer()


@pytest.fixture
def officer_web(visitor, officer):
    """A browser in which the portal officer is logged in (HTML login form)."""
    browser = visitor()
    response = browser.login(officer.login, officer.password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


@pytest.fixture
def officer_api(visitor, officer):
    """A browser in which the portal officer is logged in (JSON API)."""
    browser = visitor()
    response = browser.api_login(officer.login, officer.password)
    assert response.status_code == 200, response.get_data(as_text=True)
    return browser

