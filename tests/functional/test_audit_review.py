"""Security officers and the review screen through the web: appointing them (HTML and API), the review
screen and a record's detail (HTML and API), saved filters, and the refusals: another enterprise's
records, an invalid filter, a plain user — each a 4xx with nothing written but the decision's record."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from access import security_officers as sec
from access.models import SecurityOfficer
from audit.models import AuditRecord
from tests.functional.helpers import (PASSWORD, NothingWritten, audit_since, last_audit_id, page, problem_of)


@pytest.fixture
def bakery(world):
    return world.employer("Bakkerij De Gouden Korst")


@pytest.fixture
def garage(world):
    return world.employer("Garage Lambrecht")


@pytest.fixture
def admin(world, bakery):
    return world.local_admin(bakery)


@pytest.fixture
def garage_admin(world, garage):
    return world.local_admin(garage)


@pytest.fixture
def admin_web(visitor, admin):
    browser = visitor()
    assert browser.login(admin.login).status_code == 302
    return browser


@pytest.fixture
def officer_of_bakery(world, db_session, bakery, admin):
    """The bakery's local administrator, appointed its security officer by himself."""
    sec.appoint_enterprise_officer(db_session, bakery, admin.person,
                                   by=world.ctx.as_actor(admin.person.id, admin.login))
    world.commit()
    return admin


@pytest.fixture
def activity(world, bakery, garage, admin, garage_admin):
    """Some records for both enterprises: designations and rights."""
    world.member(bakery, admin, rights=("dmfa",))
    world.member(garage, garage_admin, rights=("asr",))
    return None


def _records(db_session, **where):
    db_session.expire_all()
    stmt = select(AuditRecord).order_by(AuditRecord.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditRecord, name) == value)
    return list(db_session.scalars(stmt))


# --- appointing -----------------------------------------------------------------------------------------------


def test_the_local_admin_appoints_and_ends_a_security_officer_on_his_page(world, db_session, bakery, admin,
                                                                          admin_web):
    employee = world.person(bakery, first="Eva", last="Wouters")
    response = admin_web.get(f"/enterprises/{bakery.id}/security-officers")
    assert response.status_code == 200
    assert "Eva Wouters" in page(response).text  # listed as someone who may be appointed
    response = admin_web.post(f"/enterprises/{bakery.id}/security-officers", {"person_id": employee.id})
    assert response.status_code == 200, response.get_data(as_text=True)
    shown = page(response)
    assert shown.find(data_testid="credential") is not None  # she had no account: shown once
    assert [row.attrs["data-person"] for row in shown.find_all("tr") if "data-person" in row.attrs] == [
        str(employee.id)]
    [appointed] = _records(db_session, action="security_officer.appoint")
    assert (appointed.actor_person_id, appointed.enterprise_id) == (admin.id, bakery.id)
    response = admin_web.post(f"/enterprises/{bakery.id}/security-officers/{employee.id}/end")
    assert response.status_code == 302
    assert sec.current_officers(db_session, bakery.id) == []
    assert [r.action for r in _records(db_session, action="security_officer.end")] == ["security_officer.end"]


def test_a_co_admin_may_not_appoint_and_nothing_is_written(world, db_session, bakery, admin, visitor):
    co = world.member(bakery, admin, "co_admin")
    browser = visitor()
    assert browser.login(co.login).status_code == 302
    with NothingWritten(db_session, audit=1, outcome="denied") as block:
        response = browser.post(f"/enterprises/{bakery.id}/security-officers", {"person_id": co.id})
    assert response.status_code == 403
    assert block.new_audit[0].reason == f"only the local administrator of {bakery.kbo_display} may do this"
    assert db_session.scalars(select(SecurityOfficer)).all() == []


def test_someone_not_under_direct_authority_is_refused(world, db_session, bakery, admin, admin_web):
    outsider = world.person(bakery, "derde")
    with NothingWritten(db_session, audit="decisions"):
        response = admin_web.post(f"/enterprises/{bakery.id}/security-officers", {"person_id": outsider.id})
    assert response.status_code == 422
    assert "direct authority" in " ".join(page(response).field_errors("person_id"))


def test_a_portal_officer_appoints_the_institutions_officer_html_and_api(world, db_session, officer_web,
                                                                        officer_api):
    response = officer_web.post("/officer/security-officers", {"insz": "75041210175", "first_name": "Vera",
                                                                "last_name": "Veilig"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Vera Veilig" in page(response).text
    [officer] = sec.current_officers(db_session, None)
    response = officer_api.api("GET", "/api/v1/security-officers")
    assert [o["name"] for o in response.get_json()] == ["Vera Veilig"]
    response = officer_api.api("POST", f"/api/v1/security-officers/{officer.person_id}/end")
    assert response.status_code == 200 and sec.current_officers(db_session, None) == []


def test_the_api_appoints_an_enterprise_officer(world, db_session, bakery, admin, visitor):
    browser = visitor()
    assert browser.api_login(admin.login).status_code == 200
    response = browser.api("POST", f"/api/v1/enterprises/{bakery.id}/security-officers", {"person_id": admin.id})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["officer"]["person_id"], body["initial_credential"]) == (admin.id, None)
    again = browser.api("POST", f"/api/v1/enterprises/{bakery.id}/security-officers", {"person_id": admin.id})
    problem_of(again, 409, "conflict")


# --- the review screen ---------------------------------------------------------------------------------------


def test_the_officer_reviews_his_enterprise_only(activity, officer_of_bakery, bakery, garage, admin_web, db_session):
    response = admin_web.get(f"/audit?enterprise={bakery.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    shown = page(response)
    rows = [int(row.attrs["data-record"]) for row in shown.find_all("tr") if "data-record" in row.attrs]
    mine = {r.id for r in _records(db_session, enterprise_id=bakery.id)}
    assert rows and set(rows) <= mine
    assert "Garage Lambrecht" not in shown.text
    # newest first
    moments = [(r.occurred_at, r.id) for r in _records(db_session) if r.id in rows]
    assert [i for _, i in sorted(moments, reverse=True)] == rows
    assert shown.testid("access-path").startswith("Your access to this page:")


def test_a_record_opens_with_its_path_names_and_before_after(activity, officer_of_bakery, bakery, admin, admin_web,
                                                            db_session):
    grant = _records(db_session, action="right.grant", enterprise_id=bakery.id)[0]
    response = admin_web.get(f"/audit/records/{grant.id}?enterprise={bakery.id}&back=enterprise%3D{bakery.id}")
    assert response.status_code == 200
    shown = page(response)
    assert shown.testid("record-enterprise") == f"Bakkerij De Gouden Korst {bakery.kbo_display}"
    assert admin.name in shown.testid("record-actor")
    assert '"right": false' in shown.testid("record-before") and '"right": true' in shown.testid("record-after")
    decision = _records(db_session, action="decision:review", enterprise_id=bakery.id)[-1]
    response = admin_web.get(f"/audit/records/{decision.id}?enterprise={bakery.id}")
    path = page(response).find(data_testid="record-path").text
    assert f"security officer of {bakery.kbo_display}" in path


def test_pages_follow_the_cursor(activity, officer_of_bakery, bakery, admin_web, officer_api, db_session):
    total = len(_records(db_session, enterprise_id=bakery.id))
    browser = admin_web
    seen, url = [], f"/api/v1/audit/records?enterprise={bakery.id}&limit=3"
    while url:
        response = browser.api("GET", url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        seen += [r["id"] for r in body["records"]]
        assert all(r["enterprise"]["id"] == bakery.id for r in body["records"])
        url = body["next"]
    # the review's own decisions are records of the bakery too, written while paging: at least all earlier ones
    assert len(seen) == len(set(seen)) >= total
    first = browser.api("GET", f"/api/v1/audit/records?enterprise={bakery.kbo_display}&limit=2").get_json()
    second = browser.api("GET", first["next"]).get_json()
    back = browser.api("GET", second["previous"]).get_json()
    # newer records (these requests' own decisions) came meanwhile; the page before the second is the first
    assert [r["id"] for r in back["records"]] == [r["id"] for r in first["records"]]


def test_the_api_record_detail_has_names_and_no_secrets(activity, officer_of_bakery, bakery, admin, admin_web,
                                                        db_session):
    grant = _records(db_session, action="right.grant", enterprise_id=bakery.id)[0]
    body = admin_web.api("GET", f"/api/v1/audit/records/{grant.id}?enterprise={bakery.id}").get_json()
    assert body["enterprise"] == {"id": bakery.id, "name": "Bakkerij De Gouden Korst", "kbo": bakery.kbo_display}
    assert body["actor"]["name"] == admin.name and body["details"]["after"] == {"right": True}
    assert PASSWORD not in admin_web.api("GET", f"/api/v1/audit/records?enterprise={bakery.id}&limit=200").get_data(
        as_text=True)


def test_the_institution_officer_sees_every_enterprise(activity, world, db_session, bakery, garage, visitor):
    person = world.person(first="Vera", last="Veilig")
    sec.appoint_institution_officer(db_session, person, by=world.ctx)
    world.commit()
    vera = world.give_own_credentials(person)
    browser = visitor()
    assert browser.api_login(vera.login).status_code == 200
    body = browser.api("GET", "/api/v1/audit/records?limit=200").get_json()
    assert {bakery.id, garage.id} <= {r["enterprise"]["id"] for r in body["records"] if r["enterprise"]}
    garage_only = browser.api("GET", f"/api/v1/audit/records?enterprise={garage.id}&limit=200").get_json()
    assert {r["enterprise"]["id"] for r in garage_only["records"]} == {garage.id}


# --- saved filters ------------------------------------------------------------------------------------------


def test_saved_filters_html_and_api(officer_of_bakery, bakery, admin_web, db_session):
    response = admin_web.post("/audit/filters", {"name": "Denied", "enterprise": str(bakery.id),
                                                 "outcome": "denied"})
    assert response.status_code == 302
    shown = page(admin_web.get(f"/audit?enterprise={bakery.id}"))
    assert "Denied" in shown.find(data_testid="saved-filters").text
    listed = admin_web.api("GET", f"/api/v1/audit/filters?enterprise={bakery.id}").get_json()
    assert [(f["name"], f["params"]) for f in listed] == [("Denied", {"enterprise": str(bakery.id),
                                                                      "outcome": "denied"})]
    created = admin_web.api("POST", "/api/v1/audit/filters", {"name": "Logins", "params": {
        "enterprise": str(bakery.id), "action": "login"}})
    assert created.status_code == 201
    bad = admin_web.api("POST", "/api/v1/audit/filters", {"name": "Bad", "params": {
        "enterprise": str(bakery.id), "from": "soon"}})
    assert problem_of(bad, 422)["field"] == "from"
    deleted = admin_web.post(f"/audit/filters/{listed[0]['id']}/delete")
    assert deleted.status_code == 302
    assert admin_web.api("DELETE", f"/api/v1/audit/filters/{created.get_json()['id']}").status_code == 204
    assert admin_web.api("GET", f"/api/v1/audit/filters?enterprise={bakery.id}").get_json() == []


# --- refusals --------------------------------------------------------------------------------------------------


def test_an_officer_asking_for_another_enterprise_is_refused(activity, officer_of_bakery, bakery, garage, admin_web,
                                                             db_session):
    foreign = _records(db_session, enterprise_id=garage.id)[-1]
    for path, html in ((f"/audit?enterprise={garage.id}", True), (f"/audit/records/{foreign.id}", True),
                       (f"/api/v1/audit/records?enterprise={garage.kbo_display}", False),
                       (f"/api/v1/audit/records/{foreign.id}", False), ("/api/v1/audit/records", False),
                       ("/audit", True)):
        with NothingWritten(db_session, audit=1, outcome="denied") as block:
            response = admin_web.get(path)
        assert response.status_code == 403, path
        if not html:
            assert problem_of(response, 403)["type"].endswith(("not-security-officer",
                                                               "not-institution-security-officer"))
        assert block.new_audit[0].action == "decision:review"
    denied = _records(db_session, action="decision:review", outcome="denied", enterprise_id=garage.id)
    assert denied  # the garage's own officer will see that someone asked


@pytest.mark.parametrize("query, field_name", [("from=2026-13-45", "from"), ("until=tomorrow", "until"),
                                               ("colour=red", "colour"), ("outcome=maybe", "outcome"),
                                               ("after=not-a-cursor", "after"), ("ip=1.2.3", "ip")])
def test_an_invalid_filter_is_422_naming_the_field(officer_of_bakery, bakery, admin_web, db_session, query,
                                                   field_name):
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = admin_web.api("GET", f"/api/v1/audit/records?enterprise={bakery.id}&{query}")
    assert problem_of(response, 422)["field"] == field_name
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = admin_web.get(f"/audit?enterprise={bakery.id}&{query}")
    assert response.status_code == 422
    shown = page(response)
    errors = shown.field_errors(field_name) if field_name in ("from", "until", "outcome", "ip") else shown.form_errors
    assert errors, shown.text


def test_a_plain_user_is_refused_before_his_filter_is_read(world, db_session, bakery, admin, visitor):
    user = world.member(bakery, admin, rights=("dmfa",))
    browser = visitor()
    assert browser.login(user.login).status_code == 302
    for path in (f"/audit?enterprise={bakery.id}", f"/audit?enterprise={bakery.id}&from=nonsense",
                 f"/api/v1/audit/records?enterprise={bakery.id}&colour=red"):
        with NothingWritten(db_session, audit=1, outcome="denied") as block:
            response = browser.get(path)
        assert response.status_code == 403, path
        assert block.new_audit[0].reason == f"not a security officer of {bakery.kbo_display}"
    with NothingWritten(db_session, audit=1, outcome="denied"):
        response = browser.post("/audit/filters", {"name": "x", "enterprise": str(bakery.id)})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(visitor, db_session, bakery):
    anonymous = visitor()
    start = last_audit_id(db_session)
    assert anonymous.get(f"/audit?enterprise={bakery.id}").status_code in (302, 401)
    assert problem_of(anonymous.get("/api/v1/audit/records"), 401)
    assert [r.outcome for r in audit_since(db_session, start)] == ["denied", "denied"]


def test_every_reason_and_step_of_the_audit_rule_has_a_text(app):
    """As tests/functional/test_messages.py does for the decision point's other sources."""
    import ast
    from pathlib import Path

    from flask_babel import force_locale

    from access.steps import Step
    from portal import ROOT
    from portal.messages import _TEXTS, step_text
    from tests.functional.test_messages import SAMPLE_PARAMS, _code_and_params

    tree = ast.parse(Path(ROOT, "access/security_officers.py").read_text())
    made = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (found := _code_and_params(node)) is not None:
            made.setdefault(found[0], set()).update(found[1])
    assert {"not-security-officer", "not-institution-security-officer", "security-officer-no-authority",
            "security-officer", "institution-security-officer"} <= set(made)
    for code, params in made.items():
        assert code in _TEXTS, code
        with app.test_request_context(), force_locale("en"):
            shown = step_text(Step(code, "fallback", {name: SAMPLE_PARAMS.get(name, f"<{name}>") for name in params}))
        assert shown != "fallback" and "%(" not in shown, code


# --- links between the officer's pages, outcomes in the reader's language ------------------------------------


def test_the_review_links_to_alerts_and_only_the_institution_sees_the_verification_link(
        activity, officer_of_bakery, bakery, admin_web, world, db_session, visitor):
    shown = page(admin_web.get(f"/audit?enterprise={bakery.id}"))
    assert shown.find(data_testid="audit-nav-alerts").attrs["href"] == f"/audit/alerts?enterprise={bakery.id}"
    assert shown.find(data_testid="audit-nav-verification") is None
    assert admin_web.get(f"/audit/alerts?enterprise={bakery.id}").status_code == 200

    person = world.person(first="Vera", last="Veilig")
    sec.appoint_institution_officer(db_session, person, by=world.ctx)
    world.commit()
    vera = visitor()
    vera.login(world.give_own_credentials(person).login)
    institution = page(vera.get("/audit"))
    link = institution.find(data_testid="audit-nav-verification")
    assert link is not None and link.attrs["href"] == "/audit/verification"
    assert vera.get(link.attrs["href"]).status_code == 200


def test_outcomes_are_shown_in_the_readers_language_and_kept_as_codes(activity, officer_of_bakery, bakery, admin,
                                                                    visitor):
    browser = visitor(lang="nl")
    browser.login(admin.login)
    shown = page(browser.get(f"/audit?enterprise={bakery.id}&outcome=success"))
    cells = shown.find_all("td", data_outcome="success")
    assert cells and {cell.text.strip() for cell in cells} == {"geslaagd"}


def test_a_record_id_does_not_tell_whose_record_it_is(activity, officer_of_bakery, bakery, garage, admin_web,
                                                      db_session):
    """Asked about his enterprise, another's record is unknown exactly as a missing one is; asked about
    none, every id is refused alike (the institution's view): no refusal names the record's enterprise."""
    foreign = _records(db_session, enterprise_id=garage.id)[0]
    missing = 2**31 - 1
    own = [admin_web.api("GET", f"/api/v1/audit/records/{i}?enterprise={bakery.id}") for i in (foreign.id, missing)]
    assert [r.status_code for r in own] == [404, 404]
    assert {**own[0].get_json(), "instance": None} == {**own[1].get_json(), "instance": None}
    bare = [admin_web.api("GET", f"/api/v1/audit/records/{i}") for i in (foreign.id, missing)]
    assert [r.status_code for r in bare] == [403, 403]
    assert bare[0].get_json()["detail"] == bare[1].get_json()["detail"]
    assert garage.kbo_display not in bare[0].get_data(as_text=True)
    html = admin_web.get(f"/audit/records/{foreign.id}?enterprise={bakery.id}")
    assert html.status_code == 404 and "Garage Lambrecht" not in html.get_data(as_text=True)
