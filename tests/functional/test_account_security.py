"""Strong authentication through the web and the API (issue 6): enrolment right after the first login,
the second step of every login, recovery codes, step-up, sessions a person sees and ends, password
change, and the administrators' reset, "end sessions" and disabling. Refusals write nothing but audit."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from access.models import Right, TotpFactor, UserSession
from tests.functional.helpers import NothingWritten, audit_since, location_path, page

NEW_PASSWORD = "Lavendel-Brug-Oever-12"
LONG_PASSWORD = "Een lange zin over de haven van Oostende, de meeuwen, de kade en het getij"


@pytest.fixture
def bakery(world):
    return world.employer("Bakkerij Peeters")


@pytest.fixture
def admin(world, bakery):
    return world.local_admin(bakery)


@pytest.fixture
def user(world, bakery, admin):
    return world.member(bakery, admin, "user")


def _codes(response) -> list[str]:
    return re.findall(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>", response.get_data(as_text=True))


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def _live_sessions(db_session, person) -> list[UserSession]:
    return list(db_session.scalars(select(UserSession).where(UserSession.account_id == person.account.id,
                                                             UserSession.ended_at.is_(None))))


# --- enrolment after the first login ----------------------------------------------------------------------


def test_first_login_then_enrolment_before_anything_else(world, visitor, db_session, bakery, admin):
    newcomer = world.member(bakery, admin, "user", own_credentials=False)
    browser = visitor()
    assert location_path(browser.login(newcomer.login, newcomer.credential.password)) == "/account/setup"
    response = browser.post("/account/setup", {"username": "nieuw.lid", "password": NEW_PASSWORD,
                                               "confirm": NEW_PASSWORD})
    assert location_path(response) == "/account/security"
    # Until a factor is set up, every page leads to the enrolment.
    for path in ("/", f"/enterprises/{bakery.id}/access", "/account/sessions"):
        assert location_path(browser.get(path)) == "/account/security", path
    assert browser.api("GET", "/api/v1/me/applications").get_json()["type"].endswith("second-factor-enrolment-required")

    shown = page(browser.post("/account/security/totp"))
    secret = shown.testid("totp-secret")
    assert secret and shown.find("img", **{"data-testid": "totp-qr"}).attrs["src"].startswith("data:image/svg+xml")
    account = newcomer.person.account
    with NothingWritten(db_session, audit=[("second_factor.enrol", "failure")]):
        response = browser.post("/account/security/totp/confirm", {"code": _wrong(browser.totp_code("nieuw.lid"))})
    assert response.status_code == 422 and page(response).field_errors("code")
    response = browser.post("/account/security/totp/confirm", {"code": browser.totp_code("nieuw.lid")})
    codes = _codes(response)
    assert response.status_code == 200 and len(set(codes)) == 10
    assert browser.get("/").status_code == 200
    factor = db_session.scalar(select(TotpFactor).where(TotpFactor.account_id == account.id))
    assert factor.confirmed_at is not None and factor.secret == secret


def test_the_api_enrols_too(world, visitor, db_session, bakery, admin):
    newcomer = world.member(bakery, admin, "user", own_credentials=False)
    browser = visitor()
    body = browser.api_login(newcomer.login, newcomer.credential.password).get_json()
    assert body["must_choose_credentials"]
    body = browser.api("POST", "/api/v1/account/credentials", {"username": "api.lid", "password": NEW_PASSWORD}).get_json()
    assert body["second_factor"] == "enrolment-required"
    started = browser.api("POST", "/api/v1/account/totp")
    assert started.status_code == 201 and started.get_json()["otpauth_uri"].startswith("otpauth://totp/")
    confirmed = browser.api("POST", "/api/v1/account/totp/confirm", {"code": browser.totp_code("api.lid")})
    assert confirmed.status_code == 200 and len(confirmed.get_json()["recovery_codes"]) == 10
    assert browser.api("GET", "/api/v1/session").get_json()["second_factor"] == "done"
    assert browser.api("GET", "/api/v1/me/applications").status_code == 200


# --- the second step of a login ----------------------------------------------------------------------------


def test_login_needs_the_code_and_refuses_wrong_and_reused_codes(visitor, db_session, admin, bakery):
    browser = visitor()
    response = browser.login(admin.login, admin.password, second_factor=False)
    assert location_path(response) == "/login/verify"
    assert location_path(browser.get(f"/enterprises/{bakery.id}/access")) == "/login/verify"
    code = browser.totp_code(admin.login)
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        refused = browser.post("/login/verify", {"code": _wrong(code)})
    assert refused.status_code == 401 and page(refused).field_errors("code")
    assert location_path(browser.post("/login/verify?next=/enterprises/%d/access" % bakery.id, {"code": code})) \
        == f"/enterprises/{bakery.id}/access"
    assert browser.get(f"/enterprises/{bakery.id}/access").status_code == 200

    again = visitor()
    again.login(admin.login, admin.password, second_factor=False)
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        assert again.post("/login/verify", {"code": code}).status_code == 401  # replay of a used code


def test_a_recovery_code_works_once(visitor, db_session, admin):
    browser = visitor()
    browser.login(admin.login, admin.password)
    browser.verify(admin.login)
    codes = _codes(browser.post("/account/security/recovery-codes"))
    assert len(codes) == 10
    browser.logout()
    browser.login(admin.login, admin.password, second_factor=False)
    assert location_path(browser.post("/login/verify", {"code": codes[0]})) == "/"
    browser.logout()
    browser.login(admin.login, admin.password, second_factor=False)
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        assert browser.post("/login/verify", {"code": codes[0]}).status_code == 401


def test_api_login_needs_the_second_factor(visitor, db_session, admin, bakery):
    browser = visitor()
    body = browser.api_login(admin.login, admin.password, second_factor=False).get_json()
    assert body["second_factor"] == "required"
    refused = browser.api("GET", f"/api/v1/enterprises/{bakery.id}/access")
    assert refused.status_code == 401 and refused.get_json()["type"].endswith("second-factor-required")
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        wrong = browser.api("POST", "/api/v1/session/second-factor", {"code": "12345x"})
    assert wrong.status_code == 401 and wrong.get_json()["field"] == "code"
    done = browser.api("POST", "/api/v1/session/second-factor", {"code": browser.totp_code(admin.login)})
    assert done.get_json()["second_factor"] == "done"
    assert browser.api("GET", f"/api/v1/enterprises/{bakery.id}/access").status_code == 200


def test_plain_users_skip_the_second_factor_when_the_setting_says_so(app, world, visitor, db_session, bakery,
                                                                    admin, user):
    app.config["SECOND_FACTOR_FOR_EVERYONE"] = False
    plain = world.member(bakery, admin, "user", own_credentials=False)
    browser = visitor()
    browser.login(plain.login, plain.credential.password)
    response = browser.post("/account/setup", {"username": "zonder.factor", "password": NEW_PASSWORD,
                                               "confirm": NEW_PASSWORD})
    assert location_path(response) == "/" and browser.get("/").status_code == 200  # no enrolment asked
    assert location_path(visitor().login(admin.login, admin.password, second_factor=False)) == "/login/verify"
    # a user who set a factor up anyway is asked for it
    assert location_path(visitor().login(user.login, user.password, second_factor=False)) == "/login/verify"


# --- step-up ------------------------------------------------------------------------------------------------


def test_granting_a_right_needs_a_fresh_second_factor(visitor, clock, db_session, bakery, admin, user):
    browser = visitor()
    browser.login(admin.login, admin.password)
    clock.advance(minutes=6)
    path = f"/enterprises/{bakery.id}/access/rights/{user.id}/dmfa"
    with NothingWritten(db_session, audit="decisions"):
        refused = browser.post(path, {"grant": "1"}, headers={"Referer": f"http://portal.test/enterprises/{bakery.id}/access"})
    assert refused.status_code == 401
    link = page(refused).find("a", **{"data-testid": "step-up-link"}).attrs["href"]
    assert link.startswith("/account/step-up?next=")
    assert location_path(browser.post(link, {"code": browser.totp_code(admin.login)})) == f"/enterprises/{bakery.id}/access"
    assert browser.post(path, {"grant": "1"}).status_code == 302
    assert db_session.scalar(select(Right).where(Right.person_id == user.id, Right.application == "dmfa"))


def test_the_api_asks_for_step_up_with_a_problem(visitor, clock, db_session, bakery, admin, user):
    browser = visitor()
    browser.api_login(admin.login, admin.password)
    clock.advance(minutes=6)
    with NothingWritten(db_session, audit="decisions"):
        refused = browser.api("PUT", f"/api/v1/enterprises/{bakery.id}/rights/{user.id}/dmfa")
    assert refused.status_code == 401 and refused.get_json()["type"].endswith("step-up-required")
    browser.api("POST", "/api/v1/session/second-factor", {"code": browser.totp_code(admin.login)})
    assert browser.api("PUT", f"/api/v1/enterprises/{bakery.id}/rights/{user.id}/dmfa").status_code in (200, 201)


def test_step_up_gives_a_new_session_id(visitor, admin):
    browser = visitor()
    browser.login(admin.login, admin.password)
    before = browser.cookie()
    browser.verify(admin.login)
    assert browser.cookie() != before


# --- sessions -----------------------------------------------------------------------------------------------


def test_a_person_sees_his_sessions_and_ends_another(visitor, db_session, admin, bakery):
    laptop, phone = visitor(user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"), visitor(ip="198.51.100.7")
    laptop.login(admin.login, admin.password)
    phone.login(admin.login, admin.password)
    shown = page(laptop.get("/account/sessions"))
    rows = shown.find_all("tr", **{"data-testid": "session-row"})
    assert len(rows) == 2 and "Firefox / Linux" in shown.text and "198.51.100.7" in shown.text
    phone_session = [s for s in _live_sessions(db_session, admin.person) if s.ip == "198.51.100.7"][0]
    assert laptop.post(f"/account/sessions/{phone_session.id}/end").status_code == 302
    assert location_path(phone.get(f"/enterprises/{bakery.id}/access")) == "/login"
    assert laptop.get(f"/enterprises/{bakery.id}/access").status_code == 200


def test_a_session_id_after_logout_is_refused(visitor, admin, bakery):
    browser = visitor()
    browser.login(admin.login, admin.password)
    stolen = browser.client.get_cookie("portal_session", domain="portal.test").value
    browser.logout()
    thief = visitor()
    thief.client.set_cookie("portal_session", stolen, domain="portal.test")
    assert location_path(thief.get(f"/enterprises/{bakery.id}/access")) == "/login"


def test_idle_and_absolute_timeouts(visitor, clock, db_session, admin, bakery):
    browser = visitor()
    browser.login(admin.login, admin.password)
    clock.advance(minutes=31)
    assert location_path(browser.get(f"/enterprises/{bakery.id}/access")) == "/login"
    ended = db_session.scalars(select(UserSession).where(UserSession.account_id == admin.person.account.id)).all()
    assert [row.ended_reason for row in ended] == ["idle timeout"]

    browser.login(admin.login, admin.password)
    for _ in range(12 * 3 + 3):
        clock.advance(minutes=20)
        response = browser.get("/account/sessions")
        if response.status_code != 200:
            break
    assert location_path(response) == "/login"
    assert "absolute timeout" in [row.ended_reason for row in
                                  db_session.scalars(select(UserSession).where(
                                      UserSession.account_id == admin.person.account.id))]


def test_password_change_needs_the_current_one_and_ends_the_other_sessions(visitor, db_session, admin, bakery):
    browser, other = visitor(), visitor()
    browser.login(admin.login, admin.password)
    other.login(admin.login, admin.password)
    with NothingWritten(db_session, audit=[("account.change_password", "failure")]):
        refused = browser.post("/account/password", {"current": "wrong-password-123", "password": NEW_PASSWORD,
                                                     "confirm": NEW_PASSWORD, "end_other_sessions": "y"})
    assert refused.status_code == 422 and page(refused).field_errors("current")
    with NothingWritten(db_session):
        weak = browser.post("/account/password", {"current": admin.password, "password": "password1234",
                                                  "confirm": "password1234", "end_other_sessions": "y"})
    assert weak.status_code == 422 and page(weak).field_errors("password")
    assert len(LONG_PASSWORD) > 64  # ASVS 5.0 6.2.9
    assert browser.post("/account/password", {"current": admin.password, "password": LONG_PASSWORD,
                                              "confirm": LONG_PASSWORD, "end_other_sessions": "y"}).status_code == 302
    assert location_path(other.get(f"/enterprises/{bakery.id}/access")) == "/login"
    assert browser.get(f"/enterprises/{bakery.id}/access").status_code == 200
    assert location_path(visitor().login(admin.login, LONG_PASSWORD)) == "/"


# --- administrators -------------------------------------------------------------------------------------------


def test_local_admin_resets_a_users_second_factor(visitor, db_session, bakery, admin, user):
    phone = visitor()
    phone.login(user.login, user.password)
    browser = visitor()
    browser.login(admin.login, admin.password)
    shown = page(browser.post(f"/enterprises/{bakery.id}/access/members/{user.id}/reset-second-factor"))
    password = shown.testid("initial-password")
    assert password and shown.testid("user-id") == user.person.account.user_id
    assert phone.api("GET", "/api/v1/session").get_json()["authenticated"] is False
    records = [r for r in audit_since(db_session, 0) if r.action == "second_factor.reset"]
    assert records[-1].actor_person_id == admin.id
    # The user starts over: the new initial password, his own password, a new factor.
    again = visitor()
    assert location_path(again.login(user.person.account.user_id, password)) == "/account/setup"


def test_a_co_admin_cannot_reset_and_nobody_resets_the_local_admin_but_the_officers(
        world, visitor, db_session, bakery, admin, user, officer_web):
    co_admin = world.member(bakery, admin, "co_admin")
    browser = visitor()
    browser.login(co_admin.login, co_admin.password)
    with NothingWritten(db_session, audit="decisions"):
        assert browser.post(f"/enterprises/{bakery.id}/access/members/{user.id}/reset-second-factor").status_code == 403
    shown = officer_web.post(f"/officer/enterprises/{bakery.id}/persons/{admin.id}/reset-second-factor")
    assert shown.status_code == 200 and page(shown).testid("initial-password")


def test_end_sessions_and_disabling_end_every_session(visitor, db_session, bakery, admin, user, officer_web):
    phone, laptop = visitor(), visitor()
    phone.login(user.login, user.password)
    laptop.login(user.login, user.password)
    browser = visitor()
    browser.login(admin.login, admin.password)
    assert browser.post(f"/enterprises/{bakery.id}/access/members/{user.id}/end-sessions").status_code == 302
    assert _live_sessions(db_session, user.person) == []
    assert not phone.api("GET", "/api/v1/session").get_json()["authenticated"]

    phone.login(user.login, user.password)
    assert officer_web.post(f"/officer/enterprises/{bakery.id}/persons/{user.id}/disable").status_code == 200
    assert not phone.api("GET", "/api/v1/session").get_json()["authenticated"]
    assert location_path(visitor().login(user.login, user.password, second_factor=False)) != "/login/verify"
    officer_web.post(f"/officer/enterprises/{bakery.id}/persons/{user.id}/enable")
    assert location_path(visitor().login(user.login, user.password)) == "/"


def test_the_cli_resets_a_second_factor_and_refuses_an_unknown_login(app, db_session, admin):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["officer", "reset-second-factor", admin.login])
    assert result.exit_code == 0, result.output
    password = result.output.split("initial password (shown once): ")[1].split()[0]
    account = admin.person.account
    db_session.refresh(account)
    assert account.must_choose_credentials and db_session.scalar(
        select(TotpFactor.id).where(TotpFactor.account_id == account.id, TotpFactor.removed_at.is_(None))) is None
    assert len(password) == 16
    with NothingWritten(db_session):
        refused = runner.invoke(args=["officer", "reset-second-factor", "nobody.here"])
    assert refused.exit_code == 2 and "No account" in refused.output


# --- passkeys through the pages (the browser's script posts JSON) -------------------------------------------


def test_a_passkey_is_added_then_used_to_log_in_and_refused_for_another_origin_or_a_replay(visitor, db_session,
                                                                                             admin, bakery):
    from tests.support.webauthn_authenticator import SoftAuthenticator

    key = SoftAuthenticator("portal.test", "http://portal.test")
    browser = visitor()
    browser.login(admin.login, admin.password)
    options = browser.api("POST", "/account/security/passkeys/options").get_json()
    assert options["rp"]["id"] == "portal.test"
    added = browser.api("POST", "/account/security/passkeys", {"credential": key.register(options), "name": "YubiKey 5"})
    assert added.status_code == 200 and added.get_json()["next"] == "/account/security"
    assert page(browser.get("/account/security")).testid("passkey").startswith("YubiKey 5")
    browser.logout()

    browser.login(admin.login, admin.password, second_factor=False)
    assert page(browser.get("/login/verify")).find(data_testid="passkey-login") is not None
    options = browser.api("POST", "/login/passkey/options").get_json()
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        wrong = browser.api("POST", "/login/passkey", {"credential": key.assert_(options, origin="http://evil.test")})
    assert wrong.status_code == 422 and wrong.get_json()["field"] == "credential"
    # the refused answer spent its challenge, although the refused request was rolled back
    assert browser.api("POST", "/login/passkey", {"credential": key.assert_(options)}).status_code == 422
    options = browser.api("POST", "/login/passkey/options").get_json()
    answer = key.assert_(options)
    done = browser.api("POST", "/login/passkey", {"credential": answer, "next": f"/enterprises/{bakery.id}/access"})
    assert done.status_code == 200 and done.get_json()["next"] == f"/enterprises/{bakery.id}/access"
    assert browser.get(f"/enterprises/{bakery.id}/access").status_code == 200
    with NothingWritten(db_session, audit=[("second_factor.check", "failure")]):
        assert browser.api("POST", "/login/passkey", {"credential": answer}).status_code == 422  # replayed


def test_after_a_factor_change_the_other_sessions_can_be_ended_at_once(visitor, db_session, admin, bakery):
    browser, elsewhere = visitor(), visitor(ip="198.51.100.9")
    browser.login(admin.login, admin.password)
    elsewhere.login(admin.login, admin.password)
    assert page(browser.get("/account/security")).find(data_testid="offer-end-sessions") is None
    assert len(_codes(browser.post("/account/security/recovery-codes"))) == 10
    offer = page(browser.get("/account/security"))
    assert offer.find(data_testid="offer-end-sessions") is not None and "1 other sessions" in offer.text
    assert browser.post("/account/sessions/end-others").status_code == 302
    assert location_path(elsewhere.get(f"/enterprises/{bakery.id}/access")) == "/login"
    assert page(browser.get("/account/security")).find(data_testid="offer-end-sessions") is None


# --- failed attempts per address -----------------------------------------------------------------------------


def test_an_address_with_too_many_failures_waits_and_others_do_not(app, visitor, db_session, clock, admin, user):
    app.config.update(LOGIN_IP_FREE_FAILURES=3, LOGIN_IP_BASE_SECONDS=30, LOGIN_IP_MAX_SECONDS=600)
    guesser = visitor(ip="192.0.2.66")
    for n in range(4):  # across accounts: the per-account lock alone would not see it
        target = (admin, user)[n % 2]
        assert guesser.login(target.login, f"wrong-password-{n}", second_factor=False).status_code == 401
    with NothingWritten(db_session, audit=[("login", "failure")]):
        refused = guesser.login(user.login, user.password, second_factor=False)  # even the right one
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert "Too many failed attempts from your address" in page(refused).text
    api = guesser.api("POST", "/api/v1/session", {"login": user.login, "password": user.password})
    assert api.status_code == 429 and api.get_json()["type"].endswith("too-many-attempts")
    # another address logs in at once; this one after the wait
    assert location_path(visitor(ip="192.0.2.67").login(user.login, user.password)) == "/"
    clock.advance(seconds=31)
    assert location_path(guesser.login(user.login, user.password)) == "/"


def test_wrong_second_factor_codes_count_for_the_address_too(app, visitor, db_session, admin):
    app.config.update(LOGIN_IP_FREE_FAILURES=2)
    browser = visitor(ip="192.0.2.77")
    browser.login(admin.login, admin.password, second_factor=False)
    wrong = _wrong(browser.totp_code(admin.login))
    assert [browser.post("/login/verify", {"code": wrong}).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_before_the_second_factor_the_header_offers_only_logging_out(visitor, admin):
    browser = visitor()
    browser.login(admin.login, admin.password, second_factor=False)
    pending = page(browser.get("/login/verify"))
    assert pending.find(data_testid="my-sessions") is None and pending.find(data_testid="who") is not None
    assert pending.find("form", action="/logout") is not None
    browser.post("/login/verify", {"code": browser.totp_code(admin.login)})
    assert page(browser.get("/")).find(data_testid="my-sessions") is not None


def test_a_login_over_a_live_session_ends_it(visitor, db_session, admin, user):
    browser = visitor()
    browser.login(admin.login, admin.password)
    browser.login(user.login, user.password)
    assert _live_sessions(db_session, admin.person) == []
    ended = db_session.scalars(select(UserSession).where(UserSession.account_id == admin.person.account.id)).one()
    assert ended.ended_reason == "replaced by a new login"
    assert len(_live_sessions(db_session, user.person)) == 1


def test_the_account_api_refuses_anyone_not_logged_in(app, visitor, db_session):
    from portal.api import schemas as s
    from portal.api.registry import OPERATIONS

    anonymous = visitor()
    own = [op for op in OPERATIONS if op.gate == "login"]
    assert len(own) >= 10
    with NothingWritten(db_session):
        for op in own:
            path = "/api/v1" + op.rule.replace("<int:session_id>", "1")
            # a body that parses, so that the login check is what refuses the call
            body = {"code": "123456"} if op.body is s.SecondFactorIn else \
                {"current": "x", "password": "y"} if op.body is not None else None
            response = anonymous.api(op.method, path, body)
            assert response.status_code == 401, (op.method, path, response.get_data(as_text=True))
            assert response.get_json()["type"].endswith("login-required")
