"""Acceptance 10: sessions, lockout without user enumeration, security headers,
the login rate limit; and that the HTML forms render without deprecated
constructs (the suite runs with warnings as errors)."""
from __future__ import annotations

import re
import warnings

import pytest

from tests.functional.helpers import (COOKIE, COOKIE_DOMAIN, NothingWritten, Visitor, audit_since, last_audit_id,
                                      location_path, page, problem_of)

GENERIC_LOGIN = "The user name or password is wrong, or the account is temporarily locked."


@pytest.fixture
def member(world):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    return enterprise, admin


# --- sessions --------------------------------------------------------------------------------------


def test_login_rotates_the_session_html(member, visitor):
    enterprise, admin = member
    browser = visitor()
    token_before = browser.token()
    before = browser.cookie()
    assert before
    response = browser.login(admin.login)
    assert response.status_code == 302
    set_cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    after = browser.cookie()
    assert after and after != before
    assert browser.token() != token_before  # a new session, with a new CSRF secret

    # the cookie captured before the login is still anonymous
    old = visitor()
    old.client.set_cookie(COOKIE, before, domain=COOKIE_DOMAIN)
    assert old.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    assert page(old.get("/")).find(data_testid="who") is None
    assert location_path(old.get(f"/enterprises/{enterprise.id}/access")) == "/login"
    # the new one carries the login
    new = visitor()
    new.client.set_cookie(COOKIE, after, domain=COOKIE_DOMAIN)
    assert new.api("GET", "/api/v1/session").get_json()["authenticated"] is True


def test_login_rotates_the_session_api(member, visitor):
    enterprise, admin = member
    browser = visitor()
    token_before = browser.token()
    before = browser.cookie()
    response = browser.api_login(admin.login)
    assert response.status_code == 200
    assert response.get_json()["csrf_token"] != token_before
    assert browser.cookie() != before
    old = visitor()
    old.client.set_cookie(COOKIE, before, domain=COOKIE_DOMAIN)
    problem_of(old.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"), 401, "login-required")


def test_logout_clears_the_session(member, visitor):
    enterprise, admin = member
    html = visitor()
    html.login(admin.login)
    assert html.get(f"/enterprises/{enterprise.id}/access").status_code == 200
    response = html.logout()
    assert response.status_code == 302
    assert html.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    assert location_path(html.get(f"/enterprises/{enterprise.id}/access")) == "/login"

    api = visitor()
    api.api_login(admin.login)
    assert api.api("DELETE", "/api/v1/session").status_code == 204
    assert api.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    problem_of(api.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"), 401, "login-required")


def test_session_cookie_captured_before_logout_is_dead_after_logout(member, visitor):
    """OWASP ASVS 3.3.1: logout invalidates the session token, so a copy of the cookie
    (another tab, a proxy log, a stolen cookie) no longer authenticates."""
    enterprise, admin = member
    browser = visitor()
    browser.login(admin.login)
    captured = browser.cookie()
    assert browser.logout().status_code == 302
    replay = visitor()
    replay.client.set_cookie(COOKIE, captured, domain=COOKIE_DOMAIN)
    assert replay.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    assert location_path(replay.get(f"/enterprises/{enterprise.id}/access")) == "/login"


def test_choosing_credentials_ends_older_sessions(world, visitor):
    enterprise = world.employer()
    admin = world.local_admin(enterprise, own_credentials=False)
    first, second = visitor(), visitor()
    first.login(admin.credential.user_id, admin.credential.password)
    second.login(admin.credential.user_id, admin.credential.password)
    response = first.post("/account/setup", {"username": "eigen.naam", "password": "Lavendel-Brug-Oever-12",
                                             "confirm": "Lavendel-Brug-Oever-12"})
    assert response.status_code == 302
    assert first.api("GET", "/api/v1/session").get_json()["authenticated"] is True
    assert second.api("GET", "/api/v1/session").get_json()["authenticated"] is False


def test_session_is_bound_to_the_client(member, visitor):
    """Strong session protection: the same cookie from another user agent is not logged in."""
    enterprise, admin = member
    browser = visitor()
    browser.login(admin.login)
    thief = visitor(user_agent="curl/8.0")
    thief.client.set_cookie(COOKIE, browser.cookie(), domain=COOKIE_DOMAIN)
    assert location_path(thief.get(f"/enterprises/{enterprise.id}/access")) == "/login"


# --- lockout and enumeration ------------------------------------------------------------------------


def test_lockout_with_one_generic_message_html(member, visitor, db_session, clock):
    enterprise, admin = member
    browser = visitor()
    answers = []
    for _ in range(5):
        response = browser.login(admin.login, "wrong-password-123")
        answers.append((response.status_code, page(response).form_errors))
    response = browser.login(admin.login)  # the right password, but locked
    answers.append((response.status_code, page(response).form_errors))
    response = browser.login("nobody.at.all", "wrong-password-123")  # unknown user
    answers.append((response.status_code, page(response).form_errors))
    assert answers == [(401, [GENERIC_LOGIN])] * 7
    assert browser.api("GET", "/api/v1/session").get_json()["authenticated"] is False

    clock.advance(seconds=61)
    assert browser.login(admin.login).status_code == 302


def test_lockout_with_one_generic_message_api(member, visitor, db_session, clock):
    enterprise, admin = member
    browser = visitor()
    start = last_audit_id(db_session)
    bodies = []
    for name, password in [(admin.login, "wrong-password-123")] * 5 + [(admin.login, admin.password),
                                                                       ("nobody.at.all", "wrong-password-123"),
                                                                       (admin.login.upper(), "x")]:
        response = browser.api_login(name, password)
        body = problem_of(response, 401, "login-failed")
        bodies.append({k: v for k, v in body.items()})
    assert all(body == bodies[0] for body in bodies), bodies
    assert bodies[0]["detail"] == GENERIC_LOGIN
    reasons = [r.reason for r in audit_since(db_session, start) if r.action == "login"]
    assert reasons[4].endswith("locked for 60 s after 5 failures")
    assert reasons[5] == "account temporarily locked"
    assert reasons[6] == "unknown login name"

    clock.advance(seconds=59)
    problem_of(browser.api_login(admin.login, admin.password), 401, "login-failed")
    clock.advance(seconds=2)
    assert browser.api_login(admin.login, admin.password).status_code == 200


def test_lock_grows_after_more_failures(member, visitor, clock):
    enterprise, admin = member
    browser = visitor()
    for _ in range(5):
        browser.api_login(admin.login, "wrong-password-123")
    clock.advance(seconds=61)
    problem_of(browser.api_login(admin.login, "still-wrong-123"), 401)  # 6th failure: 120 s
    clock.advance(seconds=61)
    problem_of(browser.api_login(admin.login, admin.password), 401)
    clock.advance(seconds=60)
    assert browser.api_login(admin.login, admin.password).status_code == 200


# --- headers ---------------------------------------------------------------------------------------


def _check_headers(response, where):
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert csp, where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'none'"] or directives.get("default-src") == ["'self'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin",
                                              "strict-origin-when-cross-origin"), where


def test_security_headers_on_html_and_api(member, world, visitor):
    enterprise, admin = member
    anonymous = visitor()
    browser = visitor()
    browser.login(admin.login)
    user = world.member(enterprise, admin)
    user_browser = visitor()
    user_browser.login(user.login)
    responses = {
        "landing": anonymous.get("/"),
        "login": anonymous.get("/login"),
        "failed login": anonymous.login("nobody", "nothing-at-all"),
        "404": anonymous.get("/no/such/page"),
        "repertory": anonymous.get("/repertory?q=Werkgever"),
        "dashboard": browser.get("/"),
        "matrix": browser.get(f"/enterprises/{enterprise.id}/access"),
        "403": user_browser.get(f"/enterprises/{enterprise.id}/access"),
        "csrf 400": anonymous.post("/login", {"login": "a", "password": "b"}, csrf=False),
        "api session": anonymous.api("GET", "/api/v1/session"),
        "api 401": anonymous.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"),
        "api 403": user_browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"),
        "api 415": browser.api("POST", f"/api/v1/enterprises/{enterprise.id}/members", data="x"),
        "api matrix": browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access"),
        "openapi": anonymous.get("/api/openapi.json"),
    }
    for where, response in responses.items():
        _check_headers(response, where)
        if response.mimetype == "text/html":
            assert response.headers.get("Cache-Control") == "no-store", where
            # what the CSP forbids must not be in the pages either
            body = response.get_data(as_text=True)
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), where
            assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", body), where
    assert responses["403"].status_code == 403 and responses["api 403"].status_code == 403


# --- rate limit -------------------------------------------------------------------------------------


@pytest.fixture
def limited_app(db_session, clock):
    from portal import create_app

    db_session.info["shared"] = True
    return create_app({"TESTING": True, "DB_SESSION_FACTORY": lambda: db_session, "RATELIMIT_ENABLED": True,
                       "LOGIN_RATE_LIMIT": "3 per minute", "SERVER_NAME": "portal.test"})


def test_login_rate_limit_html(limited_app, world, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    browser = Visitor(limited_app, ip="198.51.100.7")
    statuses = [browser.login("nobody", "wrong-password-123").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    with NothingWritten(db_session):
        response = browser.login(admin.login)  # even the right password: the address is throttled
    assert response.status_code == 429
    assert browser.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    # another address is not throttled
    assert Visitor(limited_app, ip="198.51.100.8").login(admin.login).status_code == 302


def test_login_rate_limit_api(limited_app, world):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    browser = Visitor(limited_app, ip="198.51.100.9")
    statuses = [browser.api_login("nobody", "wrong-password-123").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    problem_of(browser.api_login(admin.login), 429)


# --- the forms themselves ----------------------------------------------------------------------------


def test_html_forms_render_without_deprecation_warnings(member, world, officer_web, visitor):
    """The suite runs with `filterwarnings = error`: a page whose form construction warns would be
    a 500 there. The officer's enterprise page (LinkForm) and the local administrator's matrix
    (DesignateForm) build SelectFields, whose tuple choices WTForms 3.3 deprecates."""
    enterprise, admin = member
    browser = visitor()
    browser.login(admin.login)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        statuses = [officer_web.get(f"/officer/enterprises/{enterprise.id}").status_code,
                    browser.get(f"/enterprises/{enterprise.id}/access").status_code]
    assert statuses == [200, 200]
    deprecations = sorted({f"{w.filename.rsplit('/', 1)[-1]}:{w.lineno}: {w.message}" for w in caught
                           if issubclass(w.category, DeprecationWarning)})
    assert deprecations == []


# --- redirects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example/",
                                    "/\t/evil.example/", "/\n/evil.example/", "/%09/evil.example/"])
def test_redirect_targets_stay_on_the_site(member, visitor, target):
    """The login form's `next` and the language switch's `next` never send the browser elsewhere
    (browsers drop tabs and newlines from URLs: "/<TAB>/evil.example" is "//evil.example")."""
    from urllib.parse import quote, urlsplit

    enterprise, admin = member
    results = {}
    browser = visitor()
    token = browser.token()
    response = browser.client.post(f"/login?next={quote(target, safe='')}",
                                   data={"login": admin.login, "password": admin.password, "csrf_token": token})
    results["login"] = response.status_code, response.headers.get("Location")
    response = browser.post("/lang/en", {"next": target})
    results["language"] = response.status_code, response.headers.get("Location")
    for where, (status, location) in results.items():
        assert status == 302, results
        cleaned = "".join(ch for ch in location if ch not in "\t\r\n")
        parts = urlsplit(cleaned)
        assert not parts.scheme and not parts.netloc and not cleaned.startswith("//"), results


# --- the NUL character (PostgreSQL text cannot hold it; found by the schema fuzzer on PostgreSQL) -----


def test_a_nul_character_in_a_query_parameter_is_refused_naming_it(visitor):
    browser = visitor()
    problem = problem_of(browser.api("GET", "/api/v1/repertory?q=ab%00cd"), 422, "invalid-input")
    assert problem["field"] == "q" and "NUL" in problem["detail"]
    assert browser.get("/repertory?q=ab%00cd").status_code == 400


def test_a_nul_character_in_a_form_field_or_a_json_string_writes_nothing(member, visitor, db_session):
    _, admin = member
    browser = visitor()
    with NothingWritten(db_session):
        assert browser.post("/login", {"login": admin.login + "\x00", "password": "x"}).status_code == 400
    with NothingWritten(db_session):
        problem = problem_of(browser.api("POST", "/api/v1/session", {"login": "a", "password": "b\x00"}), 422,
                             "invalid-input")
    assert problem["field"] == "password"
    with NothingWritten(db_session):
        problem = problem_of(browser.api("POST", "/api/v1/session", {"login": "a", "password": "b",
                                                                      "x": [{"y\x00": 1}]}), 422, "invalid-input")
    assert problem["field"] == "x.0.y"
