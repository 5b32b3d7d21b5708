"""The export of the audit trail through the web (HTML buttons of the review screen, and the API): the
streamed CSV and JSON Lines, the headers, the export's own audit record (committed, with the contract the
alert rule reads), the cap that needs a confirmation, and the refusals: another enterprise, a plain user,
a bad filter or format, no CSRF token - each a 4xx with nothing written but the decision's record."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from access import security_officers as sec
from audit.models import AuditRecord
from tests.functional.helpers import NothingWritten, OnlyAuditWritten, audit_since, last_audit_id, page, problem_of


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
def officer_web(visitor, world, db_session, bakery, garage, admin):
    """The bakery's local administrator, appointed its security officer, logged in; both enterprises have
    some records (designations, rights)."""
    garage_admin = world.local_admin(garage)
    world.member(bakery, admin, rights=("dmfa",))
    world.member(garage, garage_admin, rights=("asr",))
    sec.appoint_enterprise_officer(db_session, bakery, admin.person,
                                   by=world.ctx.as_actor(admin.person.id, admin.login))
    world.commit()
    browser = visitor()
    assert browser.login(admin.login).status_code == 302
    return browser


def _export_records(db_session) -> list[AuditRecord]:
    db_session.expire_all()
    return list(db_session.scalars(select(AuditRecord).where(AuditRecord.action == "audit.export")
                                   .order_by(AuditRecord.id)))


def _csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


def test_the_officer_exports_his_enterprise_as_csv_from_the_review_screen(officer_web, bakery, garage, admin,
                                                                         db_session):
    shown = page(officer_web.get(f"/audit?enterprise={bakery.id}&action=right.grant"))
    form = shown.find("form", data_testid="export")
    assert form is not None and form.attrs["method"] == "post"
    hidden = {e.attrs["name"]: e.attrs["value"] for e in shown.find_all("input", type="hidden")
              if e.attrs.get("name") in ("enterprise", "action")}
    assert hidden == {"enterprise": str(bakery.id), "action": "right.grant"}
    start = last_audit_id(db_session)
    response = officer_web.post("/audit/export", {"enterprise": str(bakery.id), "format": "csv"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-records-2026-11-02-') and disposition.endswith('.csv"')
    [entry] = _export_records(db_session)  # committed before the body was read
    rows = _csv(response)
    assert rows and {r["enterprise_id"] for r in rows} == {str(bakery.id)}
    assert {r["enterprise_name"] for r in rows} == {"Bakkerij De Gouden Korst"}
    assert {r["enterprise_kbo"] for r in rows} == {bakery.kbo_display}
    assert "Garage Lambrecht" not in response.get_data(as_text=True)
    assert any(r["action"] == "right.grant" and r["actor_name"] == admin.name for r in rows)
    assert str(entry.id) not in {r["id"] for r in rows}  # the export is not part of itself
    assert (entry.actor_person_id, entry.enterprise_id, entry.outcome) == (admin.id, bakery.id, "success")
    assert entry.details == {"format": "csv", "rows": len(rows), "filter": {"enterprise": str(bakery.id)},
                             "confirmed": False, "cap": 100_000}
    assert [(r.action, r.outcome) for r in audit_since(db_session, start)] == [
        ("decision:export", "allowed"), ("audit.export", "success")]


def test_the_api_streams_json_lines(officer_web, bakery, db_session):
    response = officer_web.api("GET", f"/api/v1/audit/records/export?format=jsonl&enterprise={bakery.kbo_display}"
                                      "&action=right.*")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed and response.mimetype == "application/x-ndjson"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines and all(line["enterprise_id"] == bakery.id and line["action"].startswith("right.")
                         for line in lines)
    [entry] = _export_records(db_session)
    assert entry.details == {"format": "jsonl", "rows": len(lines),
                             "filter": {"enterprise": bakery.kbo_display, "action": "right.*"},
                             "confirmed": False, "cap": 100_000}


def test_the_html_and_api_exports_give_the_same_records(officer_web, bakery, db_session):
    query = f"enterprise={bakery.id}&action=right.grant"
    by_api = officer_web.api("GET", f"/api/v1/audit/records/export?format=csv&{query}").get_data(as_text=True)
    by_html = officer_web.post("/audit/export", {"enterprise": str(bakery.id), "action": "right.grant",
                                                 "format": "csv"}).get_data(as_text=True)
    assert by_api == by_html and by_api.count("\r\n") > 1


def test_above_the_cap_the_export_needs_a_confirmation(app, officer_web, bakery, db_session):
    app.config["AUDIT_EXPORT_CAP"] = 2
    with OnlyAuditWritten(db_session, ("decision:export", "allowed")):
        response = officer_web.post("/audit/export", {"enterprise": str(bakery.id), "format": "jsonl"})
    assert response.status_code == 422
    shown = page(response)
    [message] = shown.form_errors
    assert "more than the 2 an export may hold without confirmation" in message
    confirm = shown.find("form", data_testid="export-confirm")
    assert confirm is not None
    hidden = {e.attrs["name"]: e.attrs["value"] for e in shown.find_all("input", type="hidden")}
    assert (hidden["format"], hidden["confirm"], hidden["enterprise"]) == ("jsonl", "true", str(bakery.id))
    with OnlyAuditWritten(db_session, ("decision:export", "allowed")):
        response = officer_web.api("GET", f"/api/v1/audit/records/export?format=csv&enterprise={bakery.id}")
    body = problem_of(response, 422, "confirmation-required")
    assert (body["field"], body["cap"]) == ("confirm", 2) and body["count"] > 2
    assert f"holds {body['count']} records" in body["detail"]
    assert _export_records(db_session) == []

    response = officer_web.post("/audit/export", {"enterprise": str(bakery.id), "format": "jsonl",
                                                  "confirm": "true"})
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    response = officer_web.api("GET", f"/api/v1/audit/records/export?format=csv&enterprise={bakery.id}&confirm=true")
    assert response.status_code == 200 and response.get_data(as_text=True)
    first, second = _export_records(db_session)
    assert (first.details["confirmed"], first.details["cap"], first.details["rows"]) == (True, 2, len(lines))
    assert second.details["confirmed"] is True and second.details["format"] == "csv"


def test_the_audit_record_is_committed_even_if_the_body_is_never_read(officer_web, bakery, db_session):
    response = officer_web.api("GET", f"/api/v1/audit/records/export?format=csv&enterprise={bakery.id}")
    assert response.status_code == 200
    response.close()  # the client went away before the first byte
    [entry] = _export_records(db_session)
    assert entry.details["format"] == "csv"


def test_another_enterprise_is_refused(officer_web, bakery, garage, db_session):
    for send in (lambda: officer_web.post("/audit/export", {"enterprise": str(garage.id), "format": "csv"}),
                 lambda: officer_web.post("/audit/export", {"format": "csv"}),
                 lambda: officer_web.api("GET", f"/api/v1/audit/records/export?format=csv&enterprise={garage.id}"),
                 lambda: officer_web.api("GET", "/api/v1/audit/records/export?format=jsonl")):
        with NothingWritten(db_session, audit=1, outcome="denied") as block:
            response = send()
        assert response.status_code == 403
        assert block.new_audit[0].action == "decision:export"
    assert _export_records(db_session) == []


def test_a_plain_user_is_refused_before_his_filter_is_read(world, bakery, admin, visitor, db_session):
    user = world.member(bakery, admin, rights=("dmfa",))
    browser = visitor()
    assert browser.login(user.login).status_code == 302
    with NothingWritten(db_session, audit=1, outcome="denied") as block:
        response = browser.post("/audit/export", {"enterprise": str(bakery.id), "format": "csv", "from": "soon"})
    assert response.status_code == 403
    assert block.new_audit[0].reason == f"not a security officer of {bakery.kbo_display}"


@pytest.mark.parametrize("query, field_name", [
    ("format=csv&from=2026-13-45", "from"), ("format=csv&colour=red", "colour"), ("format=xlsx", "format"),
    ("", "format"), ("format=csv&confirm=maybe", "confirm"), ("format=csv&after=abc", "after")])
def test_a_bad_filter_or_format_is_422_naming_the_field(officer_web, bakery, db_session, query, field_name):
    with OnlyAuditWritten(db_session, ("decision:export", "allowed")):
        response = officer_web.api("GET", f"/api/v1/audit/records/export?enterprise={bakery.id}&{query}")
    assert problem_of(response, 422)["field"] == field_name
    form = dict(pair.split("=") for pair in query.split("&") if pair)
    with OnlyAuditWritten(db_session, ("decision:export", "allowed")):
        response = officer_web.post("/audit/export", {"enterprise": str(bakery.id), **form})
    assert response.status_code == 422
    shown = page(response)
    errors = shown.field_errors(field_name) if field_name == "from" else shown.form_errors
    assert errors, shown.text
    assert _export_records(db_session) == []


def test_the_html_export_needs_the_csrf_token(officer_web, bakery, db_session):
    with NothingWritten(db_session):
        response = officer_web.post("/audit/export", {"enterprise": str(bakery.id), "format": "csv"}, csrf=False)
    assert response.status_code == 400


def test_the_export_is_documented_in_the_openapi_document(client):
    document = client.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/v1/audit/records/export"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/csv; charset=utf-8", "application/x-ndjson"}
    assert {"format", "confirm", "enterprise", "from"} <= {p["name"] for p in operation["parameters"]}
    assert {"403", "422"} <= set(operation["responses"])


# --- with an engine of its own, as in production: the stream reads on a connection of its own -----------------


@pytest.fixture
def own_engine_app(database_url, tmp_path, clock):
    """The portal on a database of its own, with real commits and the engine the export's stream reads
    from (the other tests share one savepoint session, which no other connection could see)."""
    from sqlalchemy.orm import Session

    from db import make_session_factory
    from portal import create_app
    from tests.functional.helpers import World
    from tests.unit.mandates.isolated_db import isolated_engine

    with isolated_engine(database_url, tmp_path, "export_app") as engine:
        with Session(bind=engine, expire_on_commit=False) as session:
            world = World(session)
            bakery = world.employer("Bakkerij De Gouden Korst")
            admin = world.local_admin(bakery)
            world.member(bakery, admin, rights=("dmfa", "asr"))
            sec.appoint_enterprise_officer(session, bakery, admin.person,
                                           by=world.ctx.as_actor(admin.person.id, admin.login))
            world.commit()
        app = create_app({"TESTING": True, "DB_SESSION_FACTORY": make_session_factory(engine),
                          "RATELIMIT_ENABLED": False, "SERVER_NAME": "portal.test"})
        app.extensions["portal.engine"] = engine
        yield app, engine, bakery.id, admin.login


def _count_exports(engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(AuditRecord.id).where(AuditRecord.action == "audit.export")).all())


def test_the_record_is_committed_before_the_stream_and_writers_go_on_while_it_is_open(own_engine_app):
    from tests.functional.helpers import Visitor

    app, engine, bakery_id, login = own_engine_app
    browser = Visitor(app)
    assert browser.login(login).status_code == 302
    response = browser.api("GET", f"/api/v1/audit/records/export?format=csv&enterprise={bakery_id}")
    assert response.status_code == 200 and response.is_streamed
    assert _count_exports(engine) == 1  # committed, seen from another connection, before any byte was read
    body = iter(response.response)
    first = next(body)  # the stream's read transaction is open now
    assert b"right.grant" in first
    # another request writes (its decision record, with SQLite's write lock) while the stream is open
    other = Visitor(app)
    assert other.login(login).status_code == 302
    assert other.get(f"/audit?enterprise={bakery_id}").status_code == 200
    rest = b"".join(body)
    response.close()
    rows = list(csv.DictReader(io.StringIO((first + rest).decode(), newline="")))
    assert rows and {r["enterprise_id"] for r in rows} == {str(bakery_id)}
    with engine.connect() as conn:
        [details] = conn.execute(select(AuditRecord.details).where(AuditRecord.action == "audit.export")).scalars()
    assert details["rows"] == len(rows)  # what was counted is what was sent
