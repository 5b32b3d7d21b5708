"""Acceptance 8: every login, administrative change and gated decision writes an
audit record with actor, enterprise, application, action, outcome, reason, ip,
user agent and request id; a refused request keeps its decision record."""
from __future__ import annotations

from access.validators import make_insz, make_kbo
from tests.functional.helpers import (CLIENT_IP, USER_AGENT, audit_since, last_audit_id, page,
                                      problem_of)


def _one(records, action, outcome=None):
    found = [r for r in records if r.action == action and (outcome is None or r.outcome == outcome)]
    assert len(found) == 1, [(r.action, r.outcome) for r in records]
    return found[0]


def _assert_origin(record, request_id, ip=CLIENT_IP):
    assert (record.ip, record.user_agent, record.request_id) == (ip, USER_AGENT, request_id), \
        (record.action, record.ip, record.user_agent, record.request_id)
    assert record.occurred_at is not None


def test_logins_are_audited_html_and_api(world, visitor, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    start = last_audit_id(db_session)
    browser = visitor()

    assert browser.post("/login", {"login": admin.login, "password": "wrong-password-123"},
                        headers={"X-Request-ID": "req-login-wrong-1"}).status_code == 401
    assert browser.post("/login", {"login": "nobody.here", "password": "wrong-password-123"},
                        headers={"X-Request-ID": "req-login-unknown-1"}).status_code == 401
    assert browser.post("/login", {"login": admin.login, "password": admin.password},
                        headers={"X-Request-ID": "req-login-ok-1"}).status_code == 302
    api = visitor()
    assert api.api("POST", "/api/v1/session", {"login": admin.login, "password": "nope-nope-nope"},
                   headers={"X-Request-ID": "req-api-login-wrong"}).status_code == 401
    assert api.api("POST", "/api/v1/session", {"login": admin.login, "password": admin.password},
                   headers={"X-Request-ID": "req-api-login-ok"}).status_code == 200

    logins = {r.request_id: r for r in audit_since(db_session, start) if r.action == "login"}
    assert set(logins) == {"req-login-wrong-1", "req-login-unknown-1", "req-login-ok-1", "req-api-login-wrong",
                           "req-api-login-ok"}
    wrong, unknown, ok = logins["req-login-wrong-1"], logins["req-login-unknown-1"], logins["req-login-ok-1"]
    assert (wrong.outcome, wrong.actor_person_id, wrong.actor_label) == ("failure", admin.id, admin.login)
    assert "password" in wrong.reason
    assert (unknown.outcome, unknown.actor_person_id, unknown.actor_label) == ("failure", None, "nobody.here")
    assert unknown.reason == "unknown login name"
    assert (ok.outcome, ok.actor_person_id, ok.reason) == ("success", admin.id, "password")
    assert logins["req-api-login-wrong"].outcome == "failure"
    assert logins["req-api-login-ok"].outcome == "success"
    for request_id, record in logins.items():
        _assert_origin(record, request_id)


def test_administrative_changes_are_audited(world, officer, officer_api, visitor, db_session):
    start = last_audit_id(db_session)
    rid = {"X-Request-ID": "req-register-0001"}
    created = officer_api.api("POST", "/api/v1/enterprises", {
        "kbo": make_kbo(4_700_001), "name": "Audit BV", "street": "Dorp 1", "postal_code": "3000", "city": "Leuven",
        "legal_form": "BV"}, headers=rid).get_json()
    eid = created["id"]
    link = officer_api.api("POST", f"/api/v1/enterprises/{eid}/links", {
        "insz": make_insz("790101", 77), "first_name": "Aude", "last_name": "Auditeur", "kind": "zaakvoerder",
        "start_date": "2020-01-01"}, headers={"X-Request-ID": "req-link-0001"}).get_json()
    officer_api.api("POST", f"/api/v1/enterprises/{eid}/local-admin", {"person_id": link["person_id"]},
                    headers={"X-Request-ID": "req-appoint-0001"})

    records = audit_since(db_session, start)
    register = _one(records, "enterprise.register")
    assert (register.outcome, register.actor_person_id, register.enterprise_id) == ("success", officer.id, eid)
    assert register.details["after"]["kbo"] == make_kbo(4_700_001)
    _assert_origin(register, "req-register-0001")
    person = _one(records, "person.record")
    link_added = _one(records, "link.add")
    assert link_added.enterprise_id == eid and link_added.details["after"]["kind"] == "zaakvoerder"
    for record in (person, link_added):
        _assert_origin(record, "req-link-0001")
        assert record.actor_person_id == officer.id
    appoint = _one(records, "role.appoint_local_admin")
    assert (appoint.enterprise_id, appoint.details["person_id"]) == (eid, link["person_id"])
    _assert_origin(appoint, "req-appoint-0001")
    # the officer's gate decisions were recorded with the request that asked them
    decisions = [r for r in records if r.action.startswith("decision:")]
    assert {(r.action, r.application, r.outcome) for r in decisions} >= {
        ("decision:register_enterprise", "portaalbeheer", "allowed"),
        ("decision:record_link", "portaalbeheer", "allowed"),
        ("decision:appoint_local_admin", "portaalbeheer", "allowed")}


def test_local_admin_changes_are_audited(world, visitor, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    worker = world.person(enterprise, "werknemer")
    other = world.person(enterprise, "werknemer")
    start = last_audit_id(db_session)
    browser = visitor()
    browser.login(admin.login)
    base = f"/enterprises/{enterprise.id}/access"
    steps = [("req-designate-01", f"{base}/members", {"person_id": worker.id, "role": "user"}),
             ("req-grant-00001", f"{base}/rights/{worker.id}/dmfa", {"grant": "1"}),
             ("req-revoke-0001", f"{base}/rights/{worker.id}/dmfa", {"grant": "0"}),
             ("req-co-admin-01", f"{base}/members", {"person_id": other.id, "role": "co_admin"}),
             ("req-remove-0001", f"{base}/members/{other.id}/remove", {}),
             ("req-handover-01", f"{base}/hand-over", {"handover-person_id": worker.id})]
    for request_id, path, data in steps:
        response = browser.post(path, data, headers={"X-Request-ID": request_id})
        assert response.status_code in (200, 302), (path, response.status_code)

    records = audit_since(db_session, start)
    expected = {"req-designate-01": "role.designate_user", "req-grant-00001": "right.grant",
                "req-revoke-0001": "right.revoke", "req-co-admin-01": "role.designate_co_admin",
                "req-remove-0001": "role.remove_co_admin", "req-handover-01": "role.hand_over"}
    for request_id, action in expected.items():
        record = _one(records, action)
        assert (record.outcome, record.actor_person_id, record.enterprise_id) == \
            ("success", admin.id, enterprise.id), action
        _assert_origin(record, request_id)
        decision = [r for r in records if r.request_id == request_id and r.action.startswith("decision:")]
        assert [(d.application, d.outcome) for d in decision] == [("toegangsbeheer", "allowed")], action
    grant = _one(records, "right.grant")
    assert grant.application == "dmfa" and grant.details["person_id"] == worker.id


def test_gated_decisions_allowed_and_denied_are_audited(world, visitor, db_session):
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    user = world.member(enterprise, admin, rights=("dmfa",))
    browser = visitor()
    browser.login(user.login)
    start = last_audit_id(db_session)
    assert browser.get(f"/enterprises/{enterprise.id}/apps/dmfa",
                       headers={"X-Request-ID": "req-open-allowed"}).status_code == 200
    assert browser.get(f"/enterprises/{enterprise.id}/apps/asr",
                       headers={"X-Request-ID": "req-open-denied1"}).status_code == 403
    api = visitor()
    api.api_login(user.login)
    assert api.api("GET", f"/api/v1/enterprises/{enterprise.id}/apps/asr",
                   headers={"X-Request-ID": "req-api-denied01"}).status_code == 403
    records = {r.request_id: r for r in audit_since(db_session, start) if r.action.startswith("decision:")}

    allowed = records["req-open-allowed"]
    assert (allowed.action, allowed.outcome, allowed.application, allowed.enterprise_id, allowed.actor_person_id) \
        == ("decision:open", "allowed", "dmfa", enterprise.id, user.id)
    assert allowed.reason == "allowed" and allowed.path[0].startswith("right on Multifunctional declaration")
    for request_id in ("req-open-denied1", "req-api-denied01"):
        denied = records[request_id]
        assert (denied.outcome, denied.application, denied.enterprise_id, denied.actor_person_id) == \
            ("denied", "asr", enterprise.id, user.id)
        assert denied.reason == f"no right on Social risk declaration (ASR) for {enterprise.kbo_display}"
        _assert_origin(denied, request_id)
    _assert_origin(allowed, "req-open-allowed")


def test_denied_request_keeps_its_decision_record_after_the_rollback(world, visitor, db_session):
    """The refused request is rolled back whole, but its decision record is written anyway."""
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    user = world.member(enterprise, admin, rights=("dmfa",))
    target = world.person(enterprise, "werknemer")
    browser = visitor()
    browser.login(user.login)
    start = last_audit_id(db_session)
    response = browser.post(f"/enterprises/{enterprise.id}/access/members", {"person_id": target.id, "role": "user"},
                            headers={"X-Request-ID": "req-denied-designate"})
    assert response.status_code == 403
    assert world.current_role(enterprise, target) is None
    api = visitor()
    api.api_login(user.login)
    problem_of(api.api("PUT", f"/api/v1/enterprises/{enterprise.id}/rights/{user.id}/asr",
                       headers={"X-Request-ID": "req-denied-grant-api"}), 403, "not-an-administrator")
    assert world.current_rights(enterprise, user.person) == {"dmfa"}

    records = {r.request_id: r for r in audit_since(db_session, start) if r.action.startswith("decision:")}
    assert records["req-denied-designate"].action == "decision:manage_users"
    assert records["req-denied-grant-api"].action == "decision:manage_rights"
    for record in (records["req-denied-designate"], records["req-denied-grant-api"]):
        assert (record.outcome, record.application, record.enterprise_id, record.actor_person_id) == \
            ("denied", "toegangsbeheer", enterprise.id, user.id)
        assert record.reason == f"not an administrator of {enterprise.kbo_display}"


def test_anonymous_denial_is_audited(world, visitor, db_session):
    enterprise = world.employer()
    start = last_audit_id(db_session)
    anonymous = visitor()
    response = anonymous.get(f"/enterprises/{enterprise.id}/apps/dmfa", headers={"X-Request-ID": "req-anon-00001"})
    assert response.status_code == 302
    (record,) = [r for r in audit_since(db_session, start) if r.request_id == "req-anon-00001"]
    assert (record.action, record.outcome, record.actor_person_id, record.application, record.enterprise_id) == \
        ("decision:open", "denied", None, "dmfa", enterprise.id)
    assert record.reason == "log in to use this application"
    _assert_origin(record, "req-anon-00001")


def test_audit_record_of_a_free_search_names_no_one(world, visitor, db_session):
    world.employer("Vrije Zoektocht")
    start = last_audit_id(db_session)
    response = visitor().get("/repertory?q=Vrije", headers={"X-Request-ID": "req-free-search1"})
    assert response.status_code == 200 and "Vrije Zoektocht" in page(response).text
    (record,) = [r for r in audit_since(db_session, start) if r.request_id == "req-free-search1"]
    assert (record.action, record.outcome, record.application, record.actor_person_id) == \
        ("decision:search", "allowed", "werkgeversrepertorium", None)
