"""Access review campaigns through the web (HTML and API) and the daily `reviews close-due` command: a
campaign from its start to its deadline, with the revocation of what nobody answered; and the refusals,
each a 4xx with a clear message and nothing written but the decision point's records."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from access import security_officers as sec
from access.clock import today
from access.models import Right
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateApplication, ProviderKind, StaffAssignment
from audit.operations import CLI_CONTEXT, RequestContext
from reviews.models import AccessReview, ReviewItem
from reviews.operations import close_due_reviews
from reviews.operations import start_review as start
from tests.functional.helpers import OnlyAuditWritten, audit_since, last_audit_id, page, problem_of

Q4_2026 = date(2026, 10, 1)
REVIEW_MODELS = (AccessReview, ReviewItem, Mandate, MandateApplication, StaffAssignment)
ALLOWED = ("decision:access_review", "allowed")


@pytest.fixture
def scene(world, db_session):
    """The bakery: its local administrator, a co-administrator, a clerk with rights on dmfa and asr, an
    employee appointed security officer (no role), and an accountant entrusted the group asr (asr and
    tijdelijke_werkloosheid) by an accepted provider form, with a staff member. And a garage, another
    employer with its own administrator."""
    bakery = world.employer("Bakkerij De Gouden Korst")
    admin = world.local_admin(bakery)
    co_admin = world.member(bakery, admin, "co_admin")
    clerk = world.member(bakery, admin, "user", rights=("dmfa", "asr"))
    officer_person = world.person(bakery, first="Olivia", last="Veilig")
    sec.appoint_enterprise_officer(db_session, bakery, officer_person, by=world.ctx.as_actor(admin.id, admin.login))
    world.commit()
    officer = world.give_own_credentials(officer_person)

    accountancy = world.non_employer("Boekhouding Cijfer")
    accountancy_admin = world.local_admin(accountancy)
    accountancy_staff = world.member(accountancy, accountancy_admin, "user")
    accountant = mops.register_provider(db_session, accountancy, ProviderKind.ACCOUNTANT, by=world.ctx)
    form = mops.file_provider_form(db_session, bakery, accountant, Q4_2026, ["asr"], contract_declared=True,
                                   contract_date=date(2026, 9, 1), contract_reference="C-1", groups=load_groups(),
                                   by=world.ctx.as_actor(admin.id, admin.login))
    mops.decide_provider_form(db_session, form, accountancy, True,
                              by=world.ctx.as_actor(accountancy_admin.id, accountancy_admin.login))
    mops.assign_staff(db_session, accountancy, form, accountancy_staff.person, "asr", catalogue=world.catalogue,
                      by=world.ctx.as_actor(accountancy_admin.id, accountancy_admin.login))
    garage = world.employer("Garage Lambrecht")
    garage_admin = world.local_admin(garage)
    world.member(garage, garage_admin, "user", rights=("dmfa",))
    world.commit()
    return SimpleNamespace(bakery=bakery, admin=admin, co_admin=co_admin, clerk=clerk, officer=officer,
                           accountancy_staff=accountancy_staff, form=form, garage=garage, garage_admin=garage_admin)


def logged_in(visitor, persona, api: bool = False):
    browser = visitor()
    response = browser.api_login(persona.login) if api else browser.login(persona.login)
    assert response.status_code == (200 if api else 302), response.get_data(as_text=True)
    return browser


def base(scene) -> str:
    return f"/enterprises/{scene.bakery.id}/access-reviews"


def api_base(scene) -> str:
    return f"/api/v1/enterprises/{scene.bakery.id}/access-reviews"


def items_of(response) -> dict[tuple[str, str], str]:
    """(kind, application name or code) -> item id, from the campaign page; one row per item."""
    rows = page(response).find_all("tr", data_kind="right") + page(response).find_all("tr", data_kind="mandate_scope")
    return {(row.attrs["data-kind"], row.text): row.attrs["data-item"] for row in rows}


def item_id(response, kind: str, *words: str) -> str:
    matches = [iid for (k, text), iid in items_of(response).items() if k == kind and all(w in text for w in words)]
    assert len(matches) == 1, (kind, words, items_of(response))
    return matches[0]


def start_review(db_session, scene, *, revoke_unanswered: bool = True, deadline: date | None = None):
    review = start(db_session, scene.bakery, deadline=deadline or today() + timedelta(days=14),
                   revoke_unanswered=revoke_unanswered, by=_ctx(scene.admin))
    db_session.commit()
    return review


def _ctx(persona):
    return RequestContext(actor_person_id=persona.id, actor_label=persona.login, ip="192.0.2.1")


def current_rights(db_session, scene) -> set[str]:
    db_session.expire_all()
    return set(db_session.scalars(select(Right.application).where(
        Right.enterprise_id == scene.bakery.id, Right.person_id == scene.clerk.id, Right.revoked_at.is_(None))))


# --- the campaign, from start to deadline -------------------------------------------------------------


def test_a_campaign_from_start_to_deadline_with_revocation_of_unanswered_items(scene, visitor, db_session, app,
                                                                               clock):
    admin = logged_in(visitor, scene.admin)
    dashboard = page(admin.get("/"))
    assert dashboard.find("a", data_testid="access-reviews-link") is not None
    assert admin.get(base(scene)).status_code == 200
    deadline = today() + timedelta(days=14)
    response = admin.post(base(scene), {"deadline": deadline.isoformat(), "revoke_unanswered": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    review_url = response.headers["Location"]
    response = admin.get(review_url)
    assert response.status_code == 200
    shown = page(response)
    assert shown.testid("progress").startswith("0 of 4 answered")
    assert len(items_of(response)) == 4
    clerk_dmfa = item_id(response, "right", scene.clerk.name, "Multifunctional")
    clerk_asr = item_id(response, "right", scene.clerk.name, "Social risk")
    scope_asr = item_id(response, "mandate_scope", "Boekhouding Cijfer", "Social risk")
    scope_tw = item_id(response, "mandate_scope", "Boekhouding Cijfer", "Temporary unemployment")

    answer = admin.post(f"{review_url}/items/{clerk_dmfa}", {"decision": "confirm", "note": "needs it for payroll"})
    assert answer.status_code == 302
    answer = admin.post(f"{review_url}/items/{clerk_asr}", {"decision": "revoke"})
    assert answer.status_code == 302
    assert current_rights(db_session, scene) == {"dmfa"}

    # The security officer follows the campaign and confirms, but is shown no revoke button.
    officer = logged_in(visitor, scene.officer)
    assert page(officer.get("/")).find("a", data_testid=f"access-reviews-officer-link-{scene.bakery.id}")
    response = officer.get(review_url)
    assert response.status_code == 200
    row = page(response).find("tr", data_item=scope_asr)
    assert "Revoke" not in row.text and "Confirm" in row.text
    assert officer.post(f"{review_url}/items/{scope_asr}", {"decision": "confirm"}).status_code == 302
    assert page(officer.get(review_url)).testid("progress").startswith("3 of 4 answered")

    clock.advance(days=15)  # the day after the last day: overdue until the daily run
    officer = logged_in(visitor, scene.officer)
    assert page(officer.get(review_url)).find(data_testid="overdue") is not None
    result = app.test_cli_runner().invoke(args=["reviews", "close-due"])
    assert result.exit_code == 0, result.output
    assert "1 revoked at the deadline" in result.output and "1 access review(s) closed." in result.output

    db_session.expire_all()
    assert [item.application for item in scene.form.scope] == ["asr"]  # the unanswered scope was revoked
    response = officer.get(review_url)  # a closed campaign shows its report
    report = page(response)
    counts = {td.attrs["data-count"]: td.text for td in report.find_all("td") if "data-count" in td.attrs}
    assert counts == {"items": "4", "confirmed": "2", "revoked": "1", "revoked_at_deadline": "1", "flagged": "0",
                      "gone": "0"}
    assert report.find("tr", data_item=scope_tw).attrs["data-outcome"] == "revoked_at_deadline"
    download = officer.get(page(response).find("a", data_testid="report-csv").attrs["href"])
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert {(row["application"], row["outcome"]) for row in rows} == {
        ("dmfa", "confirmed"), ("asr", "revoked"), ("asr", "confirmed"), ("tijdelijke_werkloosheid",
                                                                          "revoked_at_deadline")}
    assert next(row for row in rows if row["outcome"] == "confirmed" and row["kind"] == "right")["note"] == \
        "needs it for payroll"


def test_the_api_lists_starts_reads_and_answers(scene, visitor, db_session, clock):
    admin = logged_in(visitor, scene.admin, api=True)
    deadline = (today() + timedelta(days=30)).isoformat()
    response = admin.api("POST", api_base(scene), {"deadline": deadline, "revoke_unanswered": False})
    assert response.status_code == 201, response.get_data(as_text=True)
    review = response.get_json()
    assert review["status"] == "open" and review["deadline"] == deadline and review["progress"] == {
        "total": 4, "answered": 0}
    assert {(i["kind"], i["application"]) for i in review["items"]} == {
        ("right", "dmfa"), ("right", "asr"), ("mandate_scope", "asr"), ("mandate_scope", "tijdelijke_werkloosheid")}
    listed = admin.api("GET", api_base(scene)).get_json()
    assert [r["id"] for r in listed] == [review["id"]]
    right = next(i for i in review["items"] if i["kind"] == "right" and i["application"] == "asr")
    response = admin.api("POST", f"{api_base(scene)}/{review['id']}/items/{right['id']}/decision",
                         {"decision": "revoke", "note": "left the team"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["outcome"] == "revoked" and response.get_json()["note"] == "left the team"
    assert current_rights(db_session, scene) == {"dmfa"}
    detail = admin.api("GET", f"{api_base(scene)}/{review['id']}").get_json()
    assert detail["progress"]["answered"] == 1 and detail["report"] is None

    clock.advance(days=31)
    close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    db_session.commit()
    admin = logged_in(visitor, scene.admin, api=True)
    detail = admin.api("GET", f"{api_base(scene)}/{review['id']}").get_json()
    assert detail["status"] == "closed" and detail["report"]["counts"]["flagged"] == 3


# --- refusals: a 4xx, a clear message, nothing written but the decision's record -------------------------


def test_a_deadline_in_the_past_is_refused(scene, visitor, db_session):
    admin = logged_in(visitor, scene.admin)
    yesterday = (today() - timedelta(days=1)).isoformat()
    with OnlyAuditWritten(db_session, ALLOWED, ("decision:access_review_auto_revoke", "allowed"), models=REVIEW_MODELS):
        response = admin.post(base(scene), {"deadline": yesterday, "revoke_unanswered": "y"})
    assert response.status_code == 422
    assert page(response).field_errors("deadline") == [
        f"The deadline is the last day to answer: choose {(today() + timedelta(days=1)).isoformat()} or later."]
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        response = admin.post(base(scene), {"deadline": "31/12/2026"})
    assert response.status_code == 422 and page(response).field_errors("deadline")

    api = logged_in(visitor, scene.admin, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        body = problem_of(api.api("POST", api_base(scene), {"deadline": yesterday}), 422, "invalid-input")
    assert body["field"] == "deadline" and "or later" in body["detail"]
    with OnlyAuditWritten(db_session, models=REVIEW_MODELS):  # refused by the schema, before the decision point
        body = problem_of(api.api("POST", api_base(scene), {"deadline": "soon"}), 422, "invalid-input")
    assert body["field"] == "deadline"


def test_a_second_open_campaign_is_refused(scene, visitor, db_session):
    review = start_review(db_session, scene)
    api = logged_in(visitor, scene.admin, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        body = problem_of(api.api("POST", api_base(scene), {"deadline": (today() + timedelta(days=5)).isoformat()}),
                          409, "conflict")
    assert f"number {review.id}" in body["detail"]
    admin = logged_in(visitor, scene.admin)
    assert page(admin.get(base(scene))).find(data_testid="start-review") is None  # no start form meanwhile


def test_an_unknown_item_is_refused(scene, visitor, db_session):
    review = start_review(db_session, scene)
    admin = logged_in(visitor, scene.admin)
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        response = admin.post(f"{base(scene)}/{review.id}/items/999999", {"decision": "confirm"})
    assert response.status_code == 404 and "Unknown item" in page(response).text
    api = logged_in(visitor, scene.admin, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        body = problem_of(api.api("POST", f"{api_base(scene)}/{review.id}/items/999999/decision",
                                  {"decision": "revoke"}), 404, "not-found")
    assert body["field"] == "item_id"
    with OnlyAuditWritten(db_session, models=REVIEW_MODELS):
        body = problem_of(api.api("POST", f"{api_base(scene)}/{review.id}/items/{review.items[0].id}/decision",
                                  {"decision": "maybe"}), 422, "invalid-input")
    assert body["field"] == "decision"


def test_another_enterprises_campaign_is_refused(scene, visitor, db_session):
    review = start_review(db_session, scene)
    item = review.items[0].id
    garage_admin = logged_in(visitor, scene.garage_admin)
    denied = ("decision:access_review", "denied")
    for path in (base(scene), f"{base(scene)}/{review.id}", f"{base(scene)}/{review.id}/report.csv"):
        with OnlyAuditWritten(db_session, denied, models=REVIEW_MODELS):
            assert garage_admin.get(path).status_code == 403
    with OnlyAuditWritten(db_session, denied, models=REVIEW_MODELS):
        response = garage_admin.post(f"{base(scene)}/{review.id}/items/{item}", {"decision": "revoke"})
    assert response.status_code == 403 and "not under the direct authority" in page(response).text
    api = logged_in(visitor, scene.garage_admin, api=True)
    with OnlyAuditWritten(db_session, denied, models=REVIEW_MODELS):
        problem_of(api.api("GET", f"{api_base(scene)}/{review.id}"), 403)
    # Under his own enterprise's address, the bakery's campaign does not exist.
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        assert garage_admin.get(f"/enterprises/{scene.garage.id}/access-reviews/{review.id}").status_code == 404
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        problem_of(api.api("POST", f"/api/v1/enterprises/{scene.garage.id}/access-reviews/{review.id}/items/{item}"
                                   "/decision", {"decision": "revoke"}), 404)
    assert current_rights(db_session, scene) == {"dmfa", "asr"}


def test_users_and_provider_staff_never_see_a_campaign(scene, visitor, db_session):
    review = start_review(db_session, scene)
    for persona in (scene.clerk, scene.accountancy_staff):
        browser = logged_in(visitor, persona)
        with OnlyAuditWritten(db_session, ("decision:access_review", "denied"), models=REVIEW_MODELS):
            assert browser.get(f"{base(scene)}/{review.id}").status_code == 403


def test_deciding_a_closed_campaign_is_refused(scene, visitor, db_session, clock):
    review = start_review(db_session, scene, revoke_unanswered=False)
    item = review.items[0].id
    clock.advance(days=15)
    admin = logged_in(visitor, scene.admin)
    with OnlyAuditWritten(db_session, ALLOWED, ALLOWED, models=REVIEW_MODELS):
        response = admin.post(f"{base(scene)}/{review.id}/items/{item}", {"decision": "confirm"})
        assert response.status_code == 409 and "has passed" in page(response).text  # overdue, not yet closed
        assert page(admin.get(f"{base(scene)}/{review.id}")).find(data_testid="overdue") is not None
    close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    db_session.commit()
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        response = admin.post(f"{base(scene)}/{review.id}/items/{item}", {"decision": "confirm"})
    assert response.status_code == 409 and "is closed" in page(response).text
    api = logged_in(visitor, scene.admin, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, models=REVIEW_MODELS):
        problem_of(api.api("POST", f"{api_base(scene)}/{review.id}/items/{item}/decision", {"decision": "confirm"}),
                   409, "conflict")


def test_an_officer_who_is_not_an_administrator_cannot_revoke(scene, visitor, db_session):
    review = start_review(db_session, scene)
    right = next(i for i in review.items if i.kind.value == "right")
    scope = next(i for i in review.items if i.kind.value == "mandate_scope")
    officer = logged_in(visitor, scene.officer)
    with OnlyAuditWritten(db_session, ALLOWED, ("decision:manage_rights", "denied"), models=REVIEW_MODELS):
        response = officer.post(f"{base(scene)}/{review.id}/items/{right.id}", {"decision": "revoke"})
    assert response.status_code == 403
    assert "not designated as administrator" in page(response).text
    api = logged_in(visitor, scene.officer, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, ("decision:manage_providers", "denied"), models=REVIEW_MODELS):
        problem_of(api.api("POST", f"{api_base(scene)}/{review.id}/items/{scope.id}/decision",
                           {"decision": "revoke"}), 403, "not-designated")
    # A co-administrator revokes rights but not a provider's mandate (the local administrator's act).
    co_admin = logged_in(visitor, scene.co_admin, api=True)
    with OnlyAuditWritten(db_session, ALLOWED, ("decision:manage_providers", "denied"), models=REVIEW_MODELS):
        problem_of(co_admin.api("POST", f"{api_base(scene)}/{review.id}/items/{scope.id}/decision",
                                {"decision": "revoke"}), 403, "local-admin-only")
    last = last_audit_id(db_session)
    assert co_admin.api("POST", f"{api_base(scene)}/{review.id}/items/{right.id}/decision",
                        {"decision": "revoke"}).status_code == 200
    actions = [r.action for r in audit_since(db_session, last)]
    assert actions == ["decision:access_review", "decision:manage_rights", "right.revoke", "access_review.decide"]


def test_only_the_local_administrator_may_start_a_campaign_that_revokes_what_is_unanswered(scene, visitor,
                                                                                            db_session):
    """Revoking at the deadline is done by a scheduled job for the campaign's starter: an officer (who may
    revoke nothing) or a co-administrator (who may not end a provider's mandate) is refused, 403 with
    nothing but the refusal written; a campaign that only flags is theirs to start."""
    tomorrow = (today() + timedelta(days=1)).isoformat()
    for persona, reason in ((scene.officer, "not-designated"), (scene.co_admin, "local-admin-only")):
        api = logged_in(visitor, persona, api=True)
        with OnlyAuditWritten(db_session, ALLOWED, ("decision:access_review_auto_revoke", "denied"),
                              models=REVIEW_MODELS):
            problem_of(api.api("POST", api_base(scene), {"deadline": tomorrow, "revoke_unanswered": True}), 403, reason)
    officer = logged_in(visitor, scene.officer)
    form = page(officer.get(base(scene)))
    assert form.find("input", name="revoke_unanswered") is None  # not offered to him
    with OnlyAuditWritten(db_session, ALLOWED, ("decision:access_review_auto_revoke", "denied"), models=REVIEW_MODELS):
        response = officer.post(base(scene), {"deadline": tomorrow, "revoke_unanswered": "y"})
    assert response.status_code == 403
    admin = logged_in(visitor, scene.admin)
    assert page(admin.get(base(scene))).find("input", name="revoke_unanswered") is not None
    assert officer.post(base(scene), {"deadline": tomorrow}).status_code == 302  # flagging only: his to start


# --- the daily command ----------------------------------------------------------------------------------


def test_close_due_closes_only_what_is_due(scene, app, db_session, clock):
    review = start_review(db_session, scene, revoke_unanswered=True, deadline=today() + timedelta(days=3))
    runner = app.test_cli_runner()
    clock.advance(days=3)  # the last day itself: nothing is due
    result = runner.invoke(args=["reviews", "close-due"])
    assert result.exit_code == 0 and "0 access review(s) closed." in result.output
    db_session.expire_all()
    assert db_session.get(AccessReview, review.id).is_open
    clock.advance(days=1)
    result = runner.invoke(args=["reviews", "close-due"])
    assert result.exit_code == 0, result.output
    assert f"Access review {review.id} closed: 0 confirmed, 0 revoked by the reviewer, 4 revoked at the deadline" \
        in result.output
    db_session.expire_all()
    assert current_rights(db_session, scene) == set()
    assert db_session.get(Mandate, scene.form.id).end_date == today() - timedelta(days=1)  # its last scope went
    closing = [r for r in audit_since(db_session, 0) if r.action == "access_review.close"]
    assert len(closing) == 1 and closing[0].actor_label == "cli"
    assert runner.invoke(args=["reviews", "close-due"]).output.strip().endswith("0 access review(s) closed.")
