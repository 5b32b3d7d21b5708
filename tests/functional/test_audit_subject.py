"""The data subject view through the web: "who consulted my data" for the person logged in (HTML and
API), with the names of the accounts and providers that acted and the enterprise they acted for;
never another person's records; a bad page number is refused with nothing written."""
from __future__ import annotations

import pytest

from audit.operations import RequestContext, record
from tests.functional.helpers import NothingWritten, page, problem_of


@pytest.fixture
def bakery(world):
    return world.employer("Bakkerij De Gouden Korst")


@pytest.fixture
def admin(world, bakery):
    return world.local_admin(bakery)


@pytest.fixture
def employee(world, bakery, admin):
    return world.member(bakery, admin, rights=("dmfa",))


def _browser(visitor, persona, api=False):
    browser = visitor()
    response = browser.api_login(persona.login) if api else browser.login(persona.login)
    assert response.status_code in (200, 302)
    return browser


def test_the_employee_sees_who_designated_him_and_granted_his_right(employee, admin, bakery, visitor):
    browser = _browser(visitor, employee)
    shown = page(browser.get("/account/data-access"))
    table = shown.testid("subject-records")
    assert "granted you a right" in table and admin.name in table and bakery.name in table
    assert "right.grant" in table and "role.designate_user" in table
    assert shown.find("a", href="/account/data-access") is not None  # the account menu's link


def test_a_portal_officers_consultation_of_the_insz_is_listed(world, employee, bakery, visitor):
    officer = world.officer()
    assert _browser(visitor, officer).get(f"/officer/enterprises/{bakery.id}").status_code == 200
    body = _browser(visitor, employee, api=True).api("GET", "/api/v1/me/data-access").get_json()
    newest = body["records"][0]
    assert (newest["action"], newest["actor"], newest["enterprise"]["name"]) == ("person.view", officer.name,
                                                                                 bakery.name)


def test_a_providers_staff_acting_for_the_employer_is_named_with_the_provider(world, db_session, employee, bakery,
                                                                             visitor):
    provider = world.non_employer("Sociaal Secretariaat Partena")
    staff = world.person(provider, first="Sam", last="Staff")
    record(db_session, RequestContext(actor_person_id=staff.id, actor_label="sam", provider_enterprise_id=provider.id),
           action="dimona.declare", outcome="success", enterprise_id=bakery.id, subject_person_ids=[employee.id])
    world.commit()
    body = _browser(visitor, employee, api=True).api("GET", "/api/v1/me/data-access").get_json()
    newest = body["records"][0]
    assert (newest["actor"], newest["provider"]["name"], newest["enterprise"]["name"]) == (
        "Sam Staff", "Sociaal Secretariaat Partena", bakery.name)
    assert "id" not in newest


def test_nobody_sees_the_records_about_someone_else(world, bakery, admin, employee, visitor):
    colleague = world.member(bakery, admin, rights=("asr",))
    body = _browser(visitor, employee, api=True).api("GET", "/api/v1/me/data-access").get_json()
    assert body["records"] and all(r["action"] != "right.grant" or r["application"] == "dmfa"
                                   for r in body["records"])
    theirs = _browser(visitor, colleague, api=True).api("GET", "/api/v1/me/data-access").get_json()
    assert {r["application"] for r in theirs["records"] if r["action"] == "right.grant"} == {"asr"}


def test_his_own_acts_are_not_listed(world, db_session, employee, visitor):
    record(db_session, RequestContext(actor_person_id=employee.id, actor_label=employee.login),
           action="account.own", outcome="success", subject_person_ids=[employee.id])
    world.commit()
    body = _browser(visitor, employee, api=True).api("GET", "/api/v1/me/data-access").get_json()
    assert "account.own" not in {r["action"] for r in body["records"]}


@pytest.mark.parametrize("bad", ["0", "abc", "-1", "100001", "²", "1.5"])
def test_a_bad_page_number_is_422_with_only_the_decision_written(employee, visitor, db_session, bad):
    browser = _browser(visitor, employee, api=True)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = browser.get(f"/account/data-access?page={bad}")
    assert response.status_code == 422
    assert "page" in page(response).testid("subject-error")
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        problem = problem_of(browser.api("GET", f"/api/v1/me/data-access?page={bad}"), 422)
    assert problem["field"] == "page"


def test_anonymous_visitors_are_refused(visitor, db_session):
    anonymous = visitor()
    with NothingWritten(db_session, audit=2, outcome="denied"):
        assert anonymous.get("/account/data-access").status_code in (302, 401)
        assert problem_of(anonymous.get("/api/v1/me/data-access"), 401)
