"""Acceptance 1 and 2: the portal officer registers enterprises, records persons and
links, appoints the local administrator; the appointment issues a one-time
initial password that expires, and the first login forces the choice of own
credentials. HTML and JSON API."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access.clock import as_utc, utcnow
from access.models import Account, Enterprise, Link, LinkKind, Membership, OutboxMessage, Person, Role
from access.validators import format_kbo, make_insz, make_kbo, make_rsz
from tests.functional.helpers import (PASSWORD, NothingWritten, enterprise_id_from, location_path, page,
                                      problem_of)

DAY = date(2026, 11, 2)  # the frozen clock's Belgian date
NOT_UNDER_AUTHORITY = "is not under the direct authority of"

LINKS = [  # (INSZ birth, first, last, kind, start, end, under direct authority today)
    ("800101", "Zoe", "Zaakvoerder", "zaakvoerder", date(2015, 3, 1), None, True),
    ("810202", "Wout", "Werknemer", "werknemer", date(2019, 9, 1), None, True),
    ("820303", "Bea", "Bestuurder", "bestuurder", date(2010, 1, 1), None, True),
    ("830404", "Vic", "Vennoot", "vennoot", date(2012, 6, 1), None, True),
    ("840505", "Zeno", "Zelfstandige", "zelfstandige_medewerker", date(2020, 5, 1), None, False),
    ("850606", "Dora", "Derde", "derde", date(2021, 1, 1), None, False),
    ("860707", "Eef", "Exwerknemer", "werknemer", date(2018, 1, 1), date(2026, 10, 1), False),
]


def _enterprise_form(**overrides):
    values = {"kbo": format_kbo(make_kbo(4_500_001)), "name": "Brouwerij Het Anker", "street": "Guido Gezellelaan 49",
              "postal_code": "2800", "city": "Mechelen", "legal_form": "NV", "rsz_number": make_rsz(4_500_002),
              "joint_committee": "118"}
    values.update(overrides)
    return values


def _link_form(birth, first, last, kind, start, end):
    return {"insz": make_insz(birth, 11), "first_name": first, "last_name": last,
            "email": f"{first.lower()}@example.invalid", "kind": kind, "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else ""}


def _person(db_session, birth) -> Person:
    db_session.expire_all()
    return db_session.scalar(select(Person).where(Person.insz == make_insz(birth, 11)))


# --- 1. registering, linking, appointing ---------------------------------------------------------------


def test_officer_registers_an_employer_and_a_non_employer_html(officer_web, db_session):
    response = officer_web.post("/officer/enterprises/new", _enterprise_form())
    assert response.status_code == 302, page(response).text
    employer = db_session.get(Enterprise, enterprise_id_from(response))
    assert (employer.kbo_number, employer.rsz_number, employer.joint_committee) == \
        (make_kbo(4_500_001), make_rsz(4_500_002), "118")
    assert employer.is_employer

    response = officer_web.post("/officer/enterprises/new", _enterprise_form(
        kbo=make_kbo(4_500_003), name="Consultancy Solo", rsz_number="", joint_committee=""))
    assert response.status_code == 302, page(response).text
    solo = db_session.get(Enterprise, enterprise_id_from(response))
    assert solo.rsz_number is None and solo.joint_committee is None and not solo.is_employer

    shown = page(officer_web.get(f"/officer/enterprises/{solo.id}"))
    assert "not an employer" in shown.text
    shown = page(officer_web.get(f"/officer/enterprises/{employer.id}"))
    assert make_rsz(4_500_002) in shown.text and "118" in shown.text
    listing = page(officer_web.get("/officer/enterprises?q=Brouwerij"))
    assert "Brouwerij Het Anker" in listing.text and "Consultancy Solo" not in listing.text


def test_officer_records_links_and_appoints_html(officer_web, world, db_session):
    enterprise = world.employer("Drukkerij Van Hout")
    for birth, first, last, kind, start, end, _ in LINKS:
        response = officer_web.post(f"/officer/enterprises/{enterprise.id}/links",
                                    _link_form(birth, first, last, kind, start, end))
        assert response.status_code == 302, page(response).text

    db_session.expire_all()
    links = db_session.scalars(select(Link).where(Link.enterprise_id == enterprise.id)).all()
    assert sorted((l.person.last_name, l.kind.value, l.start_date, l.end_date) for l in links) == \
        sorted((last, kind, start, end) for _, _, last, kind, start, end, _ in LINKS)

    shown = page(officer_web.get(f"/officer/enterprises/{enterprise.id}"))
    rows = {row.text.split(" ")[1]: row.text for row in shown.find_all("tr")[1:]}
    for _, first, last, kind, _, _, authority in LINKS:  # the column tells whether the link puts him under it today
        assert (" yes " in f" {rows[last]} ") is authority, rows[last]
        assert (" not any more " in f" {rows[last]} ") is (LinkKind(kind).is_direct_authority and not authority)
    chooser = shown.find("select", name="person_id").text
    for _, first, last, _, _, _, authority in LINKS:
        assert (f"{first} {last}" in chooser) is authority, (last, chooser)

    # refused: a self-employed collaborator, and an employee whose link ended
    for birth, last in (("840505", "Zelfstandige"), ("860707", "Exwerknemer")):
        with NothingWritten(db_session, audit=1, outcome="allowed"):
            response = officer_web.post(f"/officer/enterprises/{enterprise.id}/local-admin",
                                        {"person_id": _person(db_session, birth).id})
        assert response.status_code == 422
        text = page(response).text
        assert NOT_UNDER_AUTHORITY in text and enterprise.kbo_display in text and last in text

    zoe = _person(db_session, "800101")
    response = officer_web.post(f"/officer/enterprises/{enterprise.id}/local-admin", {"person_id": zoe.id})
    assert response.status_code == 200
    shown = page(response)
    assert shown.testid("local-admin") == "Zoe Zaakvoerder"
    assert shown.testid("user-id") and shown.testid("initial-password")
    assert world.current_role(enterprise, zoe) is Role.LOCAL_ADMIN


def test_officer_records_links_and_appoints_api(officer_api, world, db_session):
    response = officer_api.api("POST", "/api/v1/enterprises", {
        "kbo": make_kbo(4_600_001), "name": "Schrijnwerkerij Hout", "street": "Dorp 1", "postal_code": "3000",
        "city": "Leuven", "legal_form": "BV", "rsz_number": make_rsz(4_600_002), "joint_committee": "124"})
    assert response.status_code == 201, response.get_json()
    employer = response.get_json()
    assert employer["employer"] is True and employer["rsz_number"] == make_rsz(4_600_002)
    response = officer_api.api("POST", "/api/v1/enterprises", {
        "kbo": make_kbo(4_600_003), "name": "Vertaalbureau Solo", "street": "Dorp 2", "postal_code": "3000",
        "city": "Leuven", "legal_form": "BV"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["employer"] is False and response.get_json()["joint_committee"] is None

    eid = employer["id"]
    ids = {}
    for birth, first, last, kind, start, end, _ in LINKS:
        body = {k: v for k, v in _link_form(birth, first, last, kind, start, end).items() if v != ""}
        response = officer_api.api("POST", f"/api/v1/enterprises/{eid}/links", body)
        assert response.status_code == 201, response.get_json()
        link = response.get_json()
        assert (link["kind"], link["start_date"], link["end_date"]) == \
            (kind, start.isoformat(), end.isoformat() if end else None)
        ids[last] = link["person_id"]

    listed = officer_api.api("GET", f"/api/v1/enterprises/{eid}").get_json()
    assert len(listed["links"]) == len(LINKS)

    for last in ("Zelfstandige", "Derde", "Exwerknemer"):
        with NothingWritten(db_session, audit=1, outcome="allowed"):
            response = officer_api.api("POST", f"/api/v1/enterprises/{eid}/local-admin",
                                       {"person_id": ids[last]})
        body = problem_of(response, 422, "invalid-input")
        assert NOT_UNDER_AUTHORITY in body["detail"] and last in body["detail"]
        assert body.get("field")

    response = officer_api.api("POST", f"/api/v1/enterprises/{eid}/local-admin", {"person_id": ids["Vennoot"]})
    assert response.status_code == 201, response.get_json()
    out = response.get_json()
    assert out["role"] == "local_admin" and out["initial_credential"]["user_id"]
    assert out["initial_credential"]["initial_password"]

    # a second appointment while the first administrator is still under authority is refused
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", f"/api/v1/enterprises/{eid}/local-admin", {"person_id": ids["Werknemer"]})
    assert "already has a local administrator" in problem_of(response, 409, "conflict")["detail"]


@pytest.mark.parametrize("kind", ["werknemer", "zaakvoerder", "bestuurder", "vennoot"])
def test_every_direct_authority_kind_may_be_local_admin(officer_api, world, kind):
    enterprise = world.employer()
    person = world.person(enterprise, kind)
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin", {"person_id": person.id})
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("kind", ["zelfstandige_medewerker", "derde", "dienstverlener", "tussenpersoon"])
def test_no_other_kind_may_be_local_admin(officer_api, world, db_session, kind):
    enterprise = world.employer()
    person = world.person(enterprise, kind)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin",
                                   {"person_id": person.id})
    detail = problem_of(response, 422)["detail"]
    assert NOT_UNDER_AUTHORITY in detail and kind in detail


def test_link_starting_in_the_future_does_not_qualify_yet(officer_api, world, db_session, clock):
    enterprise = world.employer()
    person = world.person(enterprise, "werknemer", start=DAY + timedelta(days=10))
    with NothingWritten(db_session, audit=1):
        response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin",
                                   {"person_id": person.id})
    assert DAY.isoformat() in problem_of(response, 422)["detail"]
    clock.advance(days=10)
    officer_api.relogin()  # ten days later: a new session
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin", {"person_id": person.id})
    assert response.status_code == 201, response.get_json()


# --- 2. the one-time initial password ----------------------------------------------------------------


def test_initial_password_is_shown_once_and_sent_to_the_outbox_html(officer_web, world, db_session):
    enterprise = world.employer()
    person = world.person(enterprise, "zaakvoerder")
    response = officer_web.post(f"/officer/enterprises/{enterprise.id}/local-admin", {"person_id": person.id})
    assert response.status_code == 200
    shown = page(response)
    user_id, password = shown.testid("user-id"), shown.testid("initial-password")
    assert user_id and len(password) >= 12

    db_session.expire_all()
    account = db_session.scalar(select(Account).where(Account.person_id == person.id))
    assert account.user_id == user_id and account.must_choose_credentials
    assert password not in (account.initial_password_hash or "")  # stored hashed only
    mails = world.outbox_for(person)
    assert [m.kind for m in mails] == ["initial-credential"]
    assert user_id in mails[0].body and password in mails[0].body
    assert mails[0].recipient_email == person.email

    again = officer_web.get(f"/officer/enterprises/{enterprise.id}")
    assert again.status_code == 200
    assert password not in again.get_data(as_text=True) and page(again).testid("initial-password") is None


def test_initial_password_is_shown_once_and_sent_to_the_outbox_api(officer_api, world, db_session):
    enterprise = world.employer()
    person = world.person(enterprise, "bestuurder")
    response = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin", {"person_id": person.id})
    assert response.status_code == 201
    credential = response.get_json()["initial_credential"]
    mails = world.outbox_for(person)
    assert len(mails) == 1 and credential["initial_password"] in mails[0].body
    assert credential["user_id"] in mails[0].body
    assert credential["initial_password"] not in officer_api.api(
        "GET", f"/api/v1/enterprises/{enterprise.id}").get_data(as_text=True)


@pytest.mark.parametrize("days", [3, 14])
def test_initial_password_expires_after_configured_days_html(app, officer_web, world, db_session, clock, visitor,
                                                             days):
    app.config["INITIAL_PASSWORD_DAYS"] = days
    enterprise = world.employer()
    person = world.person(enterprise, "zaakvoerder")
    shown = page(officer_web.post(f"/officer/enterprises/{enterprise.id}/local-admin", {"person_id": person.id}))
    user_id, password = shown.testid("user-id"), shown.testid("initial-password")
    db_session.expire_all()
    account = db_session.scalar(select(Account).where(Account.person_id == person.id))
    assert as_utc(account.initial_password_expires_at) == utcnow() + timedelta(days=days)

    clock.advance(days=days, minutes=-1)
    response = visitor().login(user_id, password)
    assert response.status_code == 302 and location_path(response) == "/account/setup"

    clock.advance(minutes=2)
    response = visitor().login(user_id, password)
    assert response.status_code == 401
    assert "The user name or password is wrong" in " ".join(page(response).form_errors)


def test_initial_password_expires_after_configured_days_api(app, officer_api, world, clock, visitor):
    app.config["INITIAL_PASSWORD_DAYS"] = 5
    enterprise = world.employer()
    person = world.person(enterprise, "zaakvoerder")
    credential = officer_api.api("POST", f"/api/v1/enterprises/{enterprise.id}/local-admin",
                                 {"person_id": person.id}).get_json()["initial_credential"]
    assert credential["expires_at"].startswith((DAY + timedelta(days=5)).isoformat())
    clock.advance(days=5, seconds=1)
    response = visitor().api_login(credential["user_id"], credential["initial_password"])
    problem_of(response, 401, "login-failed")


FIRST_LOGIN_PAGES = ["/", "/repertory", "/repertory?q=Werkgever", "/enterprises/{eid}/access",
                     "/enterprises/{eid}/apps/dmfa", "/enterprises/{eid}/repertory", "/officer/enterprises"]
FIRST_LOGIN_API = [("GET", "/api/v1/me/applications"), ("GET", "/api/v1/enterprises/{eid}/access"),
                   ("GET", "/api/v1/enterprises/{eid}/apps/dmfa"), ("GET", "/api/v1/repertory?q=Werkgever"),
                   ("PUT", "/api/v1/enterprises/{eid}/rights/{pid}/dmfa")]


def test_first_login_must_choose_credentials_before_anything_html(world, visitor, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise, own_credentials=False)
    browser = visitor()
    response = browser.login(admin.credential.user_id, admin.credential.password)
    assert response.status_code == 302 and location_path(response) == "/account/setup"

    for path in FIRST_LOGIN_PAGES:
        response = browser.get(path.format(eid=enterprise.id))
        assert response.status_code == 302 and location_path(response) == "/account/setup", path
    for method, path in FIRST_LOGIN_API:
        response = browser.api(method, path.format(eid=enterprise.id, pid=admin.id))
        problem_of(response, 403, "credentials-not-chosen")
    assert browser.get("/account/setup").status_code == 200

    # a reused initial password is refused as the new one
    with NothingWritten(db_session):
        response = browser.post("/account/setup", {"username": "zoe.admin", "password": admin.credential.password,
                                                   "confirm": admin.credential.password})
    assert response.status_code == 422
    assert page(response).field_errors("password") == ["Choose a new password, not the initial one."]

    response = browser.post("/account/setup", {"username": "zoe.admin", "password": "Lavendel-Brug-Oever-12",
                                               "confirm": "Lavendel-Brug-Oever-12"})
    # then a second factor, before anything else (issue 6)
    assert response.status_code == 302 and location_path(response) == "/account/security"
    assert location_path(browser.get("/")) == "/account/security"
    browser.enrol_totp("zoe.admin")
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    assert page(dashboard).find(data_testid=f"enterprise-{enterprise.kbo_number}") is not None
    assert browser.get(f"/enterprises/{enterprise.id}/access").status_code == 200

    # the initial password is gone; the chosen credentials work
    again = visitor().login(admin.credential.user_id, admin.credential.password)
    assert again.status_code == 401
    assert visitor().login("zoe.admin", "Lavendel-Brug-Oever-12").status_code == 302


def test_first_login_must_choose_credentials_before_anything_api(world, visitor):
    enterprise = world.employer()
    admin = world.local_admin(enterprise, own_credentials=False)
    browser = visitor()
    response = browser.api_login(admin.credential.user_id, admin.credential.password)
    assert response.status_code == 200
    assert response.get_json()["must_choose_credentials"] is True

    for method, path in FIRST_LOGIN_API:
        problem_of(browser.api(method, path.format(eid=enterprise.id, pid=admin.id)), 403, "credentials-not-chosen")
    for path in FIRST_LOGIN_PAGES:
        response = browser.get(path.format(eid=enterprise.id))
        assert response.status_code == 302 and location_path(response) == "/account/setup", path

    response = browser.api("POST", "/api/v1/account/credentials",
                           {"username": "vic.admin", "password": "Lavendel-Brug-Oever-12"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["must_choose_credentials"] is False
    assert response.get_json()["second_factor"] == "enrolment-required"
    problem_of(browser.api("GET", "/api/v1/me/applications"), 403, "second-factor-enrolment-required")
    assert len(browser.api_enrol_totp("vic.admin")) == 10
    assert browser.api("GET", "/api/v1/me/applications").status_code == 200
    assert browser.api("GET", f"/api/v1/enterprises/{enterprise.id}/access").status_code == 200

    problem_of(visitor().api_login(admin.credential.user_id, admin.credential.password), 401, "login-failed")
    assert visitor().api_login("vic.admin", "Lavendel-Brug-Oever-12").status_code == 200


def test_choosing_credentials_twice_is_refused(world, visitor, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise, own_credentials=False)
    browser = visitor()
    browser.api_login(admin.credential.user_id, admin.credential.password)
    assert browser.api("POST", "/api/v1/account/credentials",
                       {"username": "eerste.keer", "password": "Lavendel-Brug-Oever-12"}).status_code == 200
    with NothingWritten(db_session):
        response = browser.api("POST", "/api/v1/account/credentials",
                               {"username": "tweede.keer", "password": "Andere-Lange-Zin-99"})
    assert problem_of(response, 422)["field"] == "username"
