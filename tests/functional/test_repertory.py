"""Acceptance 7: the employer repertory: public search and record, the secured
version behind its right, change proposals and the officer's decision. HTML and
JSON API."""
from __future__ import annotations

import base64
from datetime import date

import pytest
from sqlalchemy import select

from access.models import Enterprise
from audit.models import AuditRecord
from certificates.validation import load_trust_list
from repertory.models import ChangeProposal, ProposalStatus, RecordChange
from tests.conftest import DEFAULT_NOW
from tests.functional.helpers import NothingWritten, location_path, page, problem_of
from tests.functional.test_oauth import Machines, bearer, get_token
from tests.pki import TestPKI
from tests.unit.filechannel.helpers import batch, sign_b64

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


# --- directe wijziging in the history ---------------------------------------------------------------


def test_history_shows_the_certificate_that_proved_each_direct_change_html(bakery, world, visitor, officer_web,
                                                                          officer, app, clock, tmp_path, db_session):
    """A change by an API client's certificate-bound token, one from a signed file, and a reviewed
    proposal: the secured version tells them apart, and names the certificate of each direct change."""
    e, admin = bakery["enterprise"], bakery["admin"]
    pki = TestPKI(DEFAULT_NOW)
    machines = Machines(world, pki, load_trust_list(pki.write_trust_list(tmp_path / "trust")), clock)
    machine = machines.client(e, scopes=("directe_wijziging",))
    certificate = machine.certificate
    http = app.test_client(use_cookies=False)
    token = get_token(http, machine)
    response = bearer(http, "POST", f"/api/v1/enterprises/{e.id}/repertory/direct-changes", token,
                      json={"legal_form": "NV"})
    assert response.status_code == 201, response.get_data(as_text=True)
    by_api = response.get_json()["id"]

    sender = visitor()
    assert sender.api_login(admin.login).status_code == 200
    content = batch(e.kbo_number, {"employer": e.kbo_number, "street": "Molenstraat 3"})
    response = sender.api("POST", "/api/v1/files", {"content": base64.b64encode(content).decode(),
                                                    "signature": sign_b64(machine.issued, content).decode()})
    assert response.status_code == 201, response.get_data(as_text=True)
    by_file = response.get_json()["results"][0]["record_change_id"]

    proposal = world.proposal(e, bakery["editor"], city="Brugge", postal_code="8000")
    assert officer_web.post(f"/officer/proposals/{proposal.id}", {"accept": "yes"}).status_code == 302
    reviewed = db_session.scalar(select(RecordChange.id).where(RecordChange.proposal_id == proposal.id))

    editor = visitor()
    editor.login(bakery["editor"].login)
    shown = page(editor.get(f"/enterprises/{e.id}/repertory"))
    short = certificate.fingerprint[:16]

    api_line = shown.testid(f"change-{by_api}")
    assert shown.testid(f"change-{by_api}-kind") == "directe wijziging via the API"
    assert "by an API client" in api_line and "legal_form: BV → NV" in api_line
    proof = shown.find(data_testid=f"change-{by_api}-certificate")
    assert proof.text == f"proved with certificate {short} ({certificate.subject})"
    assert proof.attrs["title"] == f"SHA-256 {certificate.fingerprint}"

    file_line = shown.testid(f"change-{by_file}")
    assert shown.testid(f"change-{by_file}-kind") == "directe wijziging by signed file"
    assert f"by {admin.name}" in file_line and "→ Molenstraat 3" in file_line
    assert shown.testid(f"change-{by_file}-certificate") == proof.text

    proposal_line = shown.testid(f"change-{reviewed}")
    assert shown.testid(f"change-{reviewed}-kind") == f"accepted change proposal #{proposal.id}"
    assert f"reviewed by {officer.name}" in proposal_line and "city: Gent → Brugge" in proposal_line
    assert shown.testid(f"change-{reviewed}-certificate") is None and "directe wijziging" not in proposal_line

    history = editor.api("GET", f"/api/v1/enterprises/{e.id}/repertory").get_json()["history"]
    assert {h["source"]: h["certificate"] for h in history} == {
        "direct_change": certificate.fingerprint, "file_message": certificate.fingerprint, "proposal": None}

    # The security officer finds each use of the certificate under one action.
    db_session.expire_all()
    uses = db_session.scalars(select(AuditRecord).where(AuditRecord.action == "certificate.use")
                              .order_by(AuditRecord.id)).all()
    assert [u.details["purpose"] for u in uses] == ["token", "direct-change", "file-message"]
    assert {u.details["certificate_id"] for u in uses} == {certificate.id}
    assert uses[1].details["record_change_id"] == by_api and uses[1].actor_label == machine.client_id
    assert uses[2].details["reference"] == response.get_json()["reference"]
    assert token not in str([u.details for u in uses])
