"""Security alerts through the web: failed logins at the real login form raise an alert the institution's
officer sees; an enterprise's officer sees (page, dashboard, API) and acknowledges his enterprise's alerts
only; the scan runs when the page or the dashboard is opened, and from `flask audit alerts`; and the
refusals (unknown alert, another enterprise's alert, no CSRF token, a second acknowledgement, a bad
parameter, a plain user) are 4xx with nothing written but the decision's record."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from access import security_officers as sec
from access.clock import utcnow
from access.models import OutboxMessage
from audit import alerts as al
from audit.operations import RequestContext, record
from tests.functional.helpers import OnlyAuditWritten, page, problem_of

ALERT_MODELS = (al.Alert, al.AlertWatermark)


@pytest.fixture
def bakery(world):
    return world.employer("Bakkerij De Gouden Korst")


@pytest.fixture
def garage(world):
    return world.employer("Garage Lambrecht")


@pytest.fixture
def bakery_officer(world, db_session, bakery):
    """The bakery's local administrator, appointed its security officer by himself."""
    admin = world.local_admin(bakery)
    sec.appoint_enterprise_officer(db_session, bakery, admin.person,
                                   by=world.ctx.as_actor(admin.person.id, admin.login))
    world.commit()
    return admin


@pytest.fixture
def institution_officer(world, db_session):
    person = world.person(first="Vera", last="Veilig")
    sec.appoint_institution_officer(db_session, person, by=world.ctx)
    world.commit()
    return world.give_own_credentials(person)


@pytest.fixture
def logged_in(visitor):
    def make(persona):
        browser = visitor()
        assert browser.login(persona.login).status_code == 302
        return browser

    return make


def denied_burst(world, db_session, enterprise, count=None, *, actor_id=None):
    """Refused decisions of one prober on `enterprise`, one every five seconds from now."""
    count = count or al.load_rules().denied_burst.threshold
    prober = actor_id or world.person().id
    ctx = RequestContext(actor_person_id=prober, actor_label=f"user{prober}", ip="203.0.113.77")
    for _ in range(count):
        record(db_session, ctx, action="decision:open", outcome="denied", enterprise_id=enterprise.id,
               application="dmfa", reason="no right")
    world.commit()
    return prober


def alerts_of(db_session) -> list[al.Alert]:
    db_session.expire_all()
    return list(db_session.scalars(select(al.Alert).order_by(al.Alert.id)))


# --- raising and seeing -------------------------------------------------------------------------------------


def test_failed_logins_at_the_form_alert_the_institutions_officer(institution_officer, visitor, logged_in,
                                                                 db_session):
    attacker = visitor(ip="198.51.100.13")
    for _ in range(al.load_rules().failed_logins_account.threshold):
        assert attacker.login("administrator", "wrong-guess").status_code in (200, 401, 422)
    vera = logged_in(institution_officer)
    response = vera.get("/audit/alerts")
    assert response.status_code == 200
    alert = next(a for a in alerts_of(db_session) if a.rule == "failed_logins_account")
    assert (alert.enterprise_id, alert.key, alert.count) == (None, "account:administrator", 10)
    assert alert.details["ips"] == ["198.51.100.13"]
    row = page(response).find("tr", data_alert=str(alert.id))
    assert row is not None and "10 failed logins for the account administrator" in row.text
    link = page(response).find("a", data_testid=f"alert-records-{alert.id}")
    # every failure of the window, of both login steps (password, second factor)
    assert "action=" not in link.attrs["href"] and "outcome=failure" in link.attrs["href"]
    assert vera.get(link.attrs["href"]).status_code == 200
    messages = db_session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "security-alert")).all()
    assert [m.recipient_person_id for m in messages] == [institution_officer.id]


def test_an_enterprise_officer_sees_his_enterprises_alerts_only(bakery_officer, bakery, garage, world, db_session,
                                                                 logged_in):
    denied_burst(world, db_session, bakery)
    denied_burst(world, db_session, garage)
    browser = logged_in(bakery_officer)
    response = browser.get(f"/audit/alerts?enterprise={bakery.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    raised = {a.enterprise_id: a for a in alerts_of(db_session)}
    assert set(raised) == {bakery.id, garage.id}  # the scan ran when the page was opened
    shown = [row.attrs["data-alert"] for row in page(response).find_all("tr") if "data-alert" in row.attrs]
    assert shown == [str(raised[bakery.id].id)]
    link = page(response).find("a", data_testid=f"alert-records-{raised[bakery.id].id}").attrs["href"]
    assert f"enterprise={bakery.id}" in link and browser.get(link).status_code == 200

    body = browser.api("GET", f"/api/v1/audit/alerts?enterprise={bakery.id}").get_json()
    assert [(a["id"], a["rule"], a["enterprise"]["id"], a["count"]) for a in body] == [
        (raised[bakery.id].id, "denied_burst", bakery.id, 20)]
    assert body[0]["records"].startswith("/api/v1/audit/records?")
    assert browser.api("GET", body[0]["records"]).status_code == 200


def test_the_dashboard_shows_the_open_alerts_count_and_the_newest(bakery_officer, bakery, world, db_session,
                                                                  logged_in):
    denied_burst(world, db_session, bakery)
    browser = logged_in(bakery_officer)
    shown = page(browser.get("/"))
    assert "1 open alert for Bakkerij De Gouden Korst" in shown.testid(f"alerts-count-{bakery.id}")
    alert = alerts_of(db_session)[0]
    assert shown.find("li", data_alert=str(alert.id)) is not None


def test_the_cli_scans_and_a_second_run_raises_nothing(app, bakery_officer, bakery, world, db_session):
    denied_burst(world, db_session, bakery)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["audit", "alerts"])
    assert first.exit_code == 0, first.output
    assert "1 new alert(s)" in first.output and "denied_burst" in first.output
    second = runner.invoke(args=["audit", "alerts"])
    assert second.exit_code == 0 and "0 new alert(s)" in second.output
    assert len(alerts_of(db_session)) == 1


# --- acknowledging --------------------------------------------------------------------------------------------


def test_the_officer_acknowledges_an_alert_html(bakery_officer, bakery, world, db_session, logged_in):
    denied_burst(world, db_session, bakery)
    browser = logged_in(bakery_officer)
    browser.get(f"/audit/alerts?enterprise={bakery.id}")
    alert = alerts_of(db_session)[0]
    response = browser.post(f"/audit/alerts/{alert.id}/acknowledge", {"scope": str(bakery.id)})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/audit/alerts?enterprise={bakery.id}#alert-{alert.id}")
    alert = alerts_of(db_session)[0]
    assert alert.acknowledged_by_id == bakery_officer.id and alert.acknowledged_at is not None
    done = page(browser.get(f"/audit/alerts?enterprise={bakery.id}&state=acknowledged"))
    assert done.find("tr", data_alert=str(alert.id)) is not None
    open_now = page(browser.get(f"/audit/alerts?enterprise={bakery.id}"))
    assert open_now.find("tr", data_alert=str(alert.id)) is None
    assert "0 open alerts for Bakkerij De Gouden Korst" in page(browser.get("/")).testid(f"alerts-count-{bakery.id}")


def test_the_officer_acknowledges_an_alert_api(bakery_officer, bakery, world, db_session, logged_in):
    denied_burst(world, db_session, bakery)
    browser = logged_in(bakery_officer)
    alert_id = browser.api("GET", f"/api/v1/audit/alerts?enterprise={bakery.id}").get_json()[0]["id"]
    response = browser.api("POST", f"/api/v1/audit/alerts/{alert_id}/acknowledge?enterprise={bakery.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["acknowledged_by_person_id"] == bakery_officer.id
    listed = browser.api("GET", f"/api/v1/audit/alerts?enterprise={bakery.id}&state=acknowledged").get_json()
    assert [a["id"] for a in listed] == [alert_id]


# --- refusals: 4xx, nothing written but the decision ------------------------------------------------------------


def _garage_alert(world, db_session, garage) -> al.Alert:
    denied_burst(world, db_session, garage)
    al.scan_alerts(db_session, utcnow(), al.load_rules())
    world.commit()
    return alerts_of(db_session)[0]


def test_another_enterprises_alert_is_refused(bakery_officer, bakery, garage, world, db_session, logged_in):
    """Refused, and the refusal does not tell whose alert the id is: asked about his own enterprise it is
    unknown (404, as a missing one); asked about none, refused as anyone but the institution's officer is."""
    alert = _garage_alert(world, db_session, garage)
    browser = logged_in(bakery_officer)
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        refused = browser.post(f"/audit/alerts/{alert.id}/acknowledge")
    assert refused.status_code == 403 and garage.kbo_display not in page(refused).text
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        unknown = browser.post(f"/audit/alerts/{alert.id}/acknowledge", {"scope": str(bakery.id)})
    assert unknown.status_code == 404
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        api_refused = problem_of(browser.api("POST", f"/api/v1/audit/alerts/{alert.id}/acknowledge"), 403)
    missing = problem_of(browser.api("POST", "/api/v1/audit/alerts/999999/acknowledge"), 403)
    assert api_refused["detail"] == missing["detail"] and garage.kbo_display not in api_refused["detail"]
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        found = problem_of(browser.api("POST", f"/api/v1/audit/alerts/{alert.id}/acknowledge?enterprise={bakery.id}"),
                           404)
    unknown = problem_of(browser.api("POST", f"/api/v1/audit/alerts/999999/acknowledge?enterprise={bakery.id}"), 404)
    assert {**found, "instance": None} == {**unknown, "instance": None}
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        assert browser.get(f"/audit/alerts?enterprise={garage.id}").status_code == 403
    assert alerts_of(db_session)[0].acknowledged_at is None


def test_an_unknown_alert_is_refused(bakery_officer, institution_officer, logged_in, db_session):
    officer = logged_in(bakery_officer)
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        assert officer.post("/audit/alerts/999999/acknowledge").status_code == 403  # asked as the institution
    vera = logged_in(institution_officer)
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        assert vera.post("/audit/alerts/999999/acknowledge").status_code == 404
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        body = problem_of(vera.api("POST", "/api/v1/audit/alerts/999999/acknowledge"), 404)
    assert body["field"] == "alert_id"


def test_acknowledging_without_csrf_or_twice_is_refused(bakery_officer, bakery, world, db_session, logged_in):
    denied_burst(world, db_session, bakery)
    browser = logged_in(bakery_officer)
    browser.get(f"/audit/alerts?enterprise={bakery.id}")
    alert = alerts_of(db_session)[0]
    with OnlyAuditWritten(db_session, models=ALERT_MODELS):  # refused at the door, before the decision point
        assert browser.post(f"/audit/alerts/{alert.id}/acknowledge", {"scope": str(bakery.id)},
                            csrf=False).status_code == 400
    scope = {"scope": str(bakery.id)}
    assert browser.post(f"/audit/alerts/{alert.id}/acknowledge", scope).status_code == 302
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        response = browser.post(f"/audit/alerts/{alert.id}/acknowledge", scope)
    assert response.status_code == 409 and "already acknowledged" in page(response).text
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        problem_of(browser.api("POST", f"/api/v1/audit/alerts/{alert.id}/acknowledge?enterprise={bakery.id}"), 409)


def test_bad_parameters_are_refused(bakery_officer, bakery, institution_officer, logged_in, db_session):
    officer = logged_in(bakery_officer)
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        response = officer.get(f"/audit/alerts?enterprise={bakery.id}&state=closed")
    assert response.status_code == 422 and "Unknown state 'closed'" in page(response).text
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        body = problem_of(officer.api("GET", f"/api/v1/audit/alerts?enterprise={bakery.id}&state=closed"), 422)
    assert body["field"] == "state"
    vera = logged_in(institution_officer)
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        body = problem_of(vera.api("GET", "/api/v1/audit/alerts?rule=x"), 422)
    assert body["field"] == "rule"
    with OnlyAuditWritten(db_session, ("decision:review", "allowed"), models=ALERT_MODELS):
        body = problem_of(vera.api("GET", "/api/v1/audit/alerts?enterprise=0412.345.678"), 422)
    assert body["field"] == "enterprise"


def test_a_plain_user_sees_no_alerts(world, bakery, db_session, logged_in):
    admin = world.local_admin(bakery)
    user = world.member(bakery, admin, rights=("dmfa",))
    browser = logged_in(user)
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        assert browser.get(f"/audit/alerts?enterprise={bakery.id}").status_code == 403
    with OnlyAuditWritten(db_session, ("decision:review", "denied"), models=ALERT_MODELS):
        problem_of(browser.api("GET", "/api/v1/audit/alerts"), 403)
    assert page(browser.get("/")).find("section", data_testid="security-alerts") is None


def test_the_openapi_document_lists_the_alert_endpoints(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/audit/alerts"]
    assert "post" in paths["/api/v1/audit/alerts/{alert_id}/acknowledge"]
