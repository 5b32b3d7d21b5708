"""Acceptance 7: the employer repertory: public search and record, the secured
version behind its right, change proposals and the officer's decision. HTML and
JSON API."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from access.models import Enterprise
from repertory.models import ChangeProposal, ProposalStatus
from tests.functional.helpers import NothingWritten, location_path, page, problem_of

DAY = date(2026, 11, 2)


@pytest.fixture
def bakery(world):
    enterprise = world.employer("Bakkerij Zoet", joint_committee="118")
    admin = world.local_admin(enterprise)
    editor = world.member(enterprise, admin, rights=("werkgeversrepertorium_beveiligd", "wijzigingsvoorstellen"))
    plain = world.member(enterprise, admin, rights=("dmfa",))
    world.person(enterprise, "werknemer", first="Gert", last="Gestopt", start=date(2015, 1, 1), end=date(2020, 6, 30))
    world.person(enterprise, "zelfstandige_medewerker", first="Ziggy", last="Zelf")
    return dict(enterprise=enterprise, admin=admin, editor=editor, plain=plain,
                other=world.employer("Slagerij Zoet"),
                solo=world.non_employer("Zoet Consult"),
                far=world.employer("Garage Elders"))


def _results(response) -> list[str]:
    table = page(response).find(data_testid="results")
    return [a.text for a in page(response).find_all("a") if "/repertory/" in a.attrs.get("href", "")] \
        if table else []


def test_public_search_without_login_html(bakery, visitor):
    e, other, solo = bakery["enterprise"], bakery["other"], bakery["solo"]
    anonymous = visitor()
    assert anonymous.get("/repertory").status_code == 200
    assert sorted(_results(anonymous.get("/repertory?q=zoet"))) == ["Bakkerij Zoet", "Slagerij Zoet"]
    assert _results(anonymous.get(f"/repertory?q={e.kbo_display}")) == ["Bakkerij Zoet"]
    assert _results(anonymous.get(f"/repertory?q={e.kbo_number}")) == ["Bakkerij Zoet"]
    assert _results(anonymous.get(f"/repertory?q={e.rsz_number}")) == ["Bakkerij Zoet"]
    # enterprises without staff are not in the employer repertory
    assert _results(anonymous.get("/repertory?q=Zoet Consult")) == []
    assert _results(anonymous.get(f"/repertory?q={solo.kbo_number}")) == []
    response = anonymous.get("/repertory?q=x")
    assert response.status_code == 422
    assert page(response).field_errors("q") == \
        ["Type at least 2 characters: a name, a KBO number or an RSZ number."]


def test_public_search_without_login_api(bakery, visitor):
    e, solo = bakery["enterprise"], bakery["solo"]
    anonymous = visitor()
    found = anonymous.api("GET", "/api/v1/repertory?q=zoet").get_json()
    assert sorted(r["name"] for r in found) == ["Bakkerij Zoet", "Slagerij Zoet"]
    assert all(r["employer"] for r in found)
    for query in (e.kbo_display, e.kbo_number, e.rsz_number):
        assert [r["kbo"] for r in anonymous.api("GET", f"/api/v1/repertory?q={query}").get_json()] == [e.kbo_number]
    assert anonymous.api("GET", f"/api/v1/repertory?q={solo.kbo_number}").get_json() == []
    assert problem_of(anonymous.api("GET", "/api/v1/repertory?q=x"), 422)["field"] == "q"


def test_public_record_page(bakery, visitor):
    e, solo = bakery["enterprise"], bakery["solo"]
    anonymous = visitor()
    response = anonymous.get(f"/repertory/{e.kbo_number}")
    assert response.status_code == 200
    shown = page(response)
    assert shown.testid("name") == "Bakkerij Zoet"
    assert e.rsz_number in shown.text and "118" in shown.text and e.kbo_display in shown.text
    # the public record does not show who administers the enterprise
    assert bakery["admin"].name not in shown.text
    assert anonymous.get(f"/repertory/{solo.kbo_number}").status_code == 404
    assert anonymous.get("/repertory/0000000000").status_code == 404


def test_secured_version_requires_the_right(bakery, visitor, db_session):
    e = bakery["enterprise"]
    anonymous = visitor()
    response = anonymous.get(f"/enterprises/{e.id}/repertory")
    assert response.status_code == 302 and location_path(response) == "/login"
    problem_of(anonymous.api("GET", f"/api/v1/enterprises/{e.id}/repertory"), 401, "login-required")

    plain = visitor()
    plain.login(bakery["plain"].login)
    with NothingWritten(db_session, audit=1, outcome="denied"):
        response = plain.get(f"/enterprises/{e.id}/repertory")
    assert response.status_code == 403
    assert page(response).testid("deny-reason") == \
        f"You have no right on Employer repertory (secured) for {e.kbo_display}. Ask your local administrator."
    problem_of(plain.api("GET", f"/api/v1/enterprises/{e.id}/repertory"), 403, "no-right")

    # a right in one enterprise opens nothing in another
    editor = visitor()
    editor.login(bakery["editor"].login)
    assert editor.get(f"/enterprises/{bakery['far'].id}/repertory").status_code == 403


def test_secured_version_shows_admin_counts_links_and_history_html(bakery, visitor):
    e = bakery["enterprise"]
    editor = visitor()
    editor.login(bakery["editor"].login)
    response = editor.get(f"/enterprises/{e.id}/repertory")
    assert response.status_code == 200
    shown = page(response)
    assert shown.testid("local-admin") == bakery["admin"].name
    facts = dict(zip([dt.text for dt in shown.find_all("dt")], [dd.text for dd in shown.find_all("dd")]))
    assert facts["Administrators and users"] == "3"  # the local administrator and two users
    assert facts["Rights"] == "3"
    tables = shown.find_all("table")
    links = tables[-1].text
    for fragment in ("Gert Gestopt", "2015-01-01", "2020-06-30", "Ziggy Zelf", "self-employed collaborator",
                     bakery["admin"].name, "manager (zaakvoerder)"):
        assert fragment in links, fragment
    history = shown.find(data_testid="history").text
    assert "registered" in history and DAY.isoformat() in history


def test_secured_version_api(bakery, visitor):
    e = bakery["enterprise"]
    editor = visitor()
    editor.api_login(bakery["editor"].login)
    record = editor.api("GET", f"/api/v1/enterprises/{e.id}/repertory").get_json()
    assert record["local_administrator"] == bakery["admin"].name
    assert (record["users"], record["rights"]) == (3, 3)
    assert {(l["person"], l["kind"], l["end_date"]) for l in record["links"]} >= \
        {("Gert Gestopt", "werknemer", "2020-06-30"), ("Ziggy Zelf", "zelfstandige_medewerker", None)}
    assert record["access_path"][0].startswith("right on Employer repertory (secured)")
    assert record["enterprise"]["kbo"] == e.kbo_number


def test_change_proposal_accepted_html(bakery, visitor, officer_web, db_session):
    e = bakery["enterprise"]
    editor = visitor()
    editor.login(bakery["editor"].login)
    assert editor.get(f"/enterprises/{e.id}/proposals").status_code == 200
    response = editor.post(f"/enterprises/{e.id}/proposals", {"name": "Bakkerij Zoet & Zonen",
                                                              "city": "Brugge", "postal_code": "8000",
                                                              "motivation": "Nieuwe vestiging"})
    assert response.status_code == 302, page(response).text
    db_session.expire_all()
    proposal = db_session.scalar(select(ChangeProposal).where(ChangeProposal.enterprise_id == e.id))
    assert proposal.status is ProposalStatus.PENDING and proposal.proposed_by_id == bakery["editor"].id
    assert set(proposal.changes) == {"name", "city", "postal_code"}
    assert db_session.get(Enterprise, e.id).name == "Bakkerij Zoet"  # nothing changes before the decision

    listing = page(officer_web.get("/officer/proposals"))
    card = listing.find(data_testid=f"proposal-{proposal.id}")
    assert "Bakkerij Zoet & Zonen" in card.text and "Nieuwe vestiging" in card.text
    response = officer_web.post(f"/officer/proposals/{proposal.id}", {"accept": "yes"})
    assert response.status_code == 302

    db_session.expire_all()
    assert db_session.get(Enterprise, e.id).name == "Bakkerij Zoet & Zonen"
    assert db_session.get(Enterprise, e.id).city == "Brugge"
    assert db_session.get(ChangeProposal, proposal.id).status is ProposalStatus.ACCEPTED
    history = page(editor.get(f"/enterprises/{e.id}/repertory")).find(data_testid="history").text
    assert f"accepted change proposal #{proposal.id}" in history
    assert "name: Bakkerij Zoet → Bakkerij Zoet & Zonen" in history and "city: Gent → Brugge" in history
    assert page(visitor().get(f"/repertory/{e.kbo_number}")).testid("name") == "Bakkerij Zoet & Zonen"
    assert page(officer_web.get("/officer/proposals")).find(data_testid=f"proposal-{proposal.id}") is None


def test_change_proposal_rejected_needs_a_note_html(bakery, world, visitor, officer_web, db_session):
    e = bakery["enterprise"]
    proposal = world.proposal(e, bakery["editor"], street="Nieuwstraat 1")
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_web.post(f"/officer/proposals/{proposal.id}", {"accept": "no", "note": "  "})
    assert response.status_code == 422
    assert "Say why the proposal is rejected." in page(response).flashes
    assert world.refresh(proposal).status is ProposalStatus.PENDING

    response = officer_web.post(f"/officer/proposals/{proposal.id}",
                                {"accept": "no", "note": "Adres niet bekend in de KBO"})
    assert response.status_code == 302
    assert world.refresh(proposal).status is ProposalStatus.REJECTED
    assert world.refresh(e).street != "Nieuwstraat 1"
    editor = visitor()
    editor.login(bakery["editor"].login)
    history = page(editor.get(f"/enterprises/{e.id}/repertory")).find(data_testid="history").text
    assert f"rejected change proposal #{proposal.id}: Adres niet bekend in de KBO" in history
    mine = page(editor.get(f"/enterprises/{e.id}/proposals")).find(data_testid="proposals").text
    assert "rejected" in mine and "Adres niet bekend in de KBO" in mine


def test_change_proposals_api(bakery, visitor, officer_api, db_session):
    e = bakery["enterprise"]
    editor = visitor()
    editor.api_login(bakery["editor"].login)
    response = editor.api("POST", f"/api/v1/enterprises/{e.id}/proposals",
                          {"legal_form": "NV", "motivation": "Omzetting"})
    assert response.status_code == 201, response.get_json()
    accepted = response.get_json()
    assert accepted["status"] == "pending" and accepted["changes"] == {"legal_form": {"before": "BV", "after": "NV"}}
    rejected = editor.api("POST", f"/api/v1/enterprises/{e.id}/proposals", {"city": "Kortrijk",
                                                                            "postal_code": "8500"}).get_json()

    assert {p["id"] for p in officer_api.api("GET", "/api/v1/proposals").get_json()} >= \
        {accepted["id"], rejected["id"]}
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = officer_api.api("POST", f"/api/v1/proposals/{rejected['id']}/decision", {"accept": False})
    assert problem_of(response, 422, "invalid-input")["field"] == "note"

    out = officer_api.api("POST", f"/api/v1/proposals/{accepted['id']}/decision", {"accept": True}).get_json()
    assert out["status"] == "accepted"
    out = officer_api.api("POST", f"/api/v1/proposals/{rejected['id']}/decision",
                          {"accept": False, "note": "Geen bewijs"}).get_json()
    assert out["status"] == "rejected" and out["decision_note"] == "Geen bewijs"
    # deciding twice is refused
    problem_of(officer_api.api("POST", f"/api/v1/proposals/{accepted['id']}/decision", {"accept": True}), 409)

    record = editor.api("GET", f"/api/v1/enterprises/{e.id}/repertory").get_json()
    assert record["enterprise"]["legal_form"] == "NV" and record["enterprise"]["city"] == "Gent"
    assert [(h["source"], h["changes"]) for h in record["history"]] == \
        [("proposal", {"legal_form": {"before": "BV", "after": "NV"}})]
    assert {(p["id"], p["status"], p["decision_note"]) for p in record["proposals"]} == \
        {(accepted["id"], "accepted", None), (rejected["id"], "rejected", "Geen bewijs")}


def test_change_proposal_needs_the_right(bakery, visitor, db_session):
    e = bakery["enterprise"]
    plain = visitor()
    plain.login(bakery["plain"].login)
    with NothingWritten(db_session, audit=1, outcome="denied"):
        response = plain.post(f"/enterprises/{e.id}/proposals", {"name": "Overname"})
    assert response.status_code == 403
    assert "You have no right on Change proposals" in page(response).testid("deny-reason")
    api = visitor(ip="203.0.113.12")
    api.api_login(bakery["plain"].login)
    with NothingWritten(db_session, audit=1, outcome="denied"):
        problem_of(api.api("POST", f"/api/v1/enterprises/{e.id}/proposals", {"name": "Overname"}), 403, "no-right")
    # a proposal that changes nothing is refused at the field
    editor = visitor()
    editor.login(bakery["editor"].login)
    with NothingWritten(db_session, audit=1, outcome="allowed"):
        response = editor.post(f"/enterprises/{e.id}/proposals", {"name": "Bakkerij Zoet"})
    assert response.status_code == 422
    assert page(response).field_errors("name") == ["The proposal changes nothing: fill in at least one new value."]
