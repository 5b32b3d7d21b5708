"""The audit trail on the API: records for review (security officers), saved filters, and the appointment
of security officers (an enterprise's local administrator; a portal officer for the institution).

GET /api/v1/audit/records takes the filter as query parameters (audit.queries: from, until, actor,
enterprise, provider, application, action, outcome, ip, q) and pages by cursor (`after` = next_cursor for
older records, `before` = previous_cursor for newer ones, `limit` up to 200). The enterprise of the filter
is what the decision point is asked about: an enterprise's security officer names his enterprise; without
one, only the institution's officer is allowed. An invalid filter is answered 422 (problem+json naming
the field) once the decision point has allowed the request."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify, request, url_for
from pydantic import BaseModel, Field

from access import operations as ops
from access import security_officers as sec
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.clock import as_utc
from access.errors import NotFound
from access.models import Person, SecurityOfficer
from access.validators import format_kbo
from audit import export
from audit import queries as q
from portal.api.registry import api_route
from portal.api.schemas import Credential, Input, PersonRefIn
from portal.context import current_subject, request_context
from portal.database import get_session
from portal.gate import check
from portal.errors import problem
from portal.messages import error_text
from portal.views.audit import (EXPORT_CONTROLS, application_name, export_response, gate_enterprise, parse_or_error,
                                plan_export, record_scope, split_args)

FILTER_QUERY = {
    "from": "start: a date (YYYY-MM-DD) or a moment (YYYY-MM-DDTHH:MM, Belgian time unless an offset is given)",
    "until": "end (inclusive): a date or a moment",
    "actor": "id of the acting person",
    "enterprise": "the enterprise acted for (id or KBO number); an enterprise's security officer must give his own",
    "provider": "the service provider whose staff acted (id or KBO number)",
    "application": "application code",
    "action": "action, or a prefix ending in * (decision:*)",
    "outcome": "allowed, denied, error, success or failure (several separated by commas)",
    "ip": "IP address",
    "q": "words in the reason",
    "after": "cursor: the page of older records (next_cursor of the previous answer)",
    "before": "cursor: the page of newer records (previous_cursor)",
    "limit": "records per page, 1 to 200 (default 50)",
}


class PartyOut(BaseModel):
    id: int
    name: str | None
    kbo: str | None


class ActorOut(BaseModel):
    person_id: int | None
    name: str | None
    label: str | None


class AuditRecordOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: ActorOut
    enterprise: PartyOut | None
    provider: PartyOut | None
    application: str | None
    application_name: str | None
    action: str
    outcome: str
    reason: str | None
    path: list[str] | None
    details: Any = None
    ip: str | None
    user_agent: str | None
    request_id: str | None


class AuditPageOut(BaseModel):
    records: list[AuditRecordOut]
    next_cursor: str | None
    previous_cursor: str | None
    next: str | None = None
    previous: str | None = None


class SavedFilterIn(Input):
    name: str = Field(min_length=1, max_length=100)
    params: dict[str, str] = Field(default_factory=dict, max_length=len(q.FILTER_FIELDS))


class SavedFilterOut(BaseModel):
    id: int
    name: str
    params: dict[str, str]
    url: str


class SecurityOfficerOut(BaseModel):
    person_id: int
    name: str
    enterprise_id: int | None
    since: datetime


class OfficerAppointmentOut(BaseModel):
    officer: SecurityOfficerOut
    initial_credential: Credential | None


class InstitutionOfficerIn(Input):
    insz: str = Field(max_length=20)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254)


def _party(ref_id: int | None, name: str | None, kbo: str | None) -> PartyOut | None:
    return PartyOut(id=ref_id, name=name, kbo=format_kbo(kbo) if kbo else None) if ref_id is not None else None


def record_out(row: q.AuditRow) -> AuditRecordOut:
    r = row.record
    return AuditRecordOut(
        id=r.id, occurred_at=row.occurred_at,
        actor=ActorOut(person_id=r.actor_person_id, name=row.actor_name, label=r.actor_label),
        enterprise=_party(r.enterprise_id, row.enterprise_name, row.enterprise_kbo),
        provider=_party(r.provider_enterprise_id, row.provider_name, row.provider_kbo),
        application=r.application, application_name=application_name(r.application), action=r.action,
        outcome=r.outcome, reason=r.reason, path=r.path, details=q.redact(r.details), ip=r.ip,
        user_agent=r.user_agent, request_id=r.request_id)


@api_route("/audit/records", "GET", summary="Audit records for review, newest first, filtered, paged by cursor",
           tag="audit", gate=sec.SECURITY_AUDIT, response=AuditPageOut, query=FILTER_QUERY)
def audit_records():
    session = get_session()
    raw, paging_raw = split_args(request.args)
    flt, error = parse_or_error(session, raw)
    decision = check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, flt, raw))
    if error is not None:
        raise error
    paging = q.parse_page(paging_raw)
    result = q.page(session, flt, q.AuditScope.from_decision(decision), after=paging["after"],
                    before=paging["before"], limit=paging["limit"])
    extra = {"limit": str(paging["limit"])} if "limit" in paging_raw else {}

    def link(**cursor) -> str:
        return url_for("api.audit_records", **flt.params, **extra, **cursor)

    return AuditPageOut(records=[record_out(row) for row in result.rows], next_cursor=result.next_cursor,
                        previous_cursor=result.previous_cursor,
                        next=link(after=result.next_cursor) if result.next_cursor else None,
                        previous=link(before=result.previous_cursor) if result.previous_cursor else None)


@api_route("/audit/records/<int:record_id>", "GET", summary="One audit record with its names and decision path",
           tag="audit", gate=sec.SECURITY_AUDIT, response=AuditRecordOut,
           query={"enterprise": "the enterprise whose records you review (id or KBO number); omitted: the "
                                "institution's view. A record outside the scope granted is unknown (404)."})
def audit_record(record_id: int):
    row = q.get_row(get_session(), record_id, record_scope())
    if row is None:
        raise NotFound("Unknown audit record.", "record_id")
    return record_out(row)


# --- the export ----------------------------------------------------------------------------------------------

EXPORT_QUERY = {**{name: text for name, text in FILTER_QUERY.items() if name in q.FILTER_FIELDS},
                "format": "csv or jsonl (required)",
                "confirm": "true to export more records than the configured cap (AUDIT_EXPORT_CAP); without it "
                           "such an export is refused (422, field confirm, with count and cap)"}


@api_route("/audit/records/export", "GET", summary="Export the filtered audit records as CSV or JSON Lines "
                                                 "(streamed; the export is itself audit-logged)",
           tag="audit", gate=sec.SECURITY_AUDIT, query=EXPORT_QUERY, media_types=tuple(export.FORMATS.values()))
def audit_records_export():
    """The records of the filter (the same fields as GET /api/v1/audit/records), newest first, streamed:
    CSV (text/csv, a header row; cells a spreadsheet would run as a formula start with an apostrophe) or
    JSON Lines (application/x-ndjson, one object per record). The export's own audit record (action
    audit.export) is committed before the first byte; it is not part of the export."""
    session = get_session()
    raw = {name: request.args.getlist(name) for name in request.args if name not in EXPORT_CONTROLS}
    controls = {name: request.args.getlist(name) for name in EXPORT_CONTROLS if name in request.args}
    planned, _, error = plan_export(session, raw, controls)
    if isinstance(error, export.ConfirmationRequired):
        return problem(422, error.code, error_text(error), field=error.field, count=error.count, cap=error.cap)
    if error is not None:
        raise error
    return export_response(session, planned)


# --- saved filters ----------------------------------------------------------------------------------------


def _saved_out(saved) -> SavedFilterOut:
    return SavedFilterOut(id=saved.id, name=saved.name, params=saved.params,
                          url=url_for("api.audit_records", **saved.params))


@api_route("/audit/filters", "GET", summary="My saved filters of the review screen (an enterprise's officer gives "
                                        "?enterprise=)", tag="audit", query={"enterprise": "id or KBO number"},
           gate=sec.SECURITY_AUDIT, response=list[SavedFilterOut])
def audit_filters():
    session = get_session()
    raw = {"enterprise": request.args.getlist("enterprise")} if "enterprise" in request.args else {}
    check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, None, raw))
    return jsonify([_saved_out(s).model_dump(mode="json")
                    for s in q.saved_filters(session, current_subject().person_id)])


@api_route("/audit/filters", "POST", summary="Save a filter under a name (the same name replaces it)",
           tag="audit", gate=sec.SECURITY_AUDIT, body=SavedFilterIn, response=SavedFilterOut, status=201)
def audit_filter_save(payload: SavedFilterIn):
    session = get_session()
    flt, error = parse_or_error(session, payload.params)
    check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, flt, payload.params))
    if error is not None:
        raise error
    return _saved_out(q.save_filter(session, current_subject().person_id, payload.name, flt.params,
                                    by=request_context()))


@api_route("/audit/filters/<int:filter_id>", "DELETE", summary="Delete one of my saved filters", tag="audit",
           gate=sec.SECURITY_AUDIT, status=204)
def audit_filter_delete(filter_id: int):
    session = get_session()
    person_id = current_subject().person_id
    try:
        saved = q.get_saved_filter(session, person_id, filter_id) if person_id is not None else None
    except NotFound:
        saved = None
    params = saved.params if saved is not None else {}
    check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, None, {"enterprise": [params["enterprise"]]})
          if "enterprise" in params else None)
    if saved is None:
        raise NotFound("Unknown saved filter.", "filter_id")
    q.delete_filter(session, person_id, filter_id, by=request_context())
    return "", 204


# --- security officers ----------------------------------------------------------------------------------------


def _officer_out(officer: SecurityOfficer) -> SecurityOfficerOut:
    return SecurityOfficerOut(person_id=officer.person_id, name=officer.person.full_name,
                              enterprise_id=officer.enterprise_id, since=as_utc(officer.started_at))


def _appointment_out(appointment: sec.OfficerAppointment) -> OfficerAppointmentOut:
    credential = appointment.credential
    return OfficerAppointmentOut(
        officer=_officer_out(appointment.officer),
        initial_credential=Credential(user_id=credential.user_id, initial_password=credential.password,
                                      expires_at=credential.expires_at) if credential is not None else None)


def _person(person_id: int) -> Person:
    person = get_session().get(Person, person_id)
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


@api_route("/enterprises/<int:enterprise_id>/security-officers", "GET",
           summary="The enterprise's current security officers", tag="audit", gate=ACCESS_MANAGEMENT,
           response=list[SecurityOfficerOut])
def enterprise_officers(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view", enterprise_id)
    ops.get_enterprise(get_session(), enterprise_id)
    return jsonify([_officer_out(o).model_dump(mode="json")
                    for o in sec.current_officers(get_session(), enterprise_id)])


@api_route("/enterprises/<int:enterprise_id>/security-officers", "POST",
           summary="Appoint a security officer of the enterprise (its local administrator; he may appoint himself)",
           tag="audit", gate=ACCESS_MANAGEMENT, body=PersonRefIn, response=OfficerAppointmentOut, status=201)
def enterprise_officer_appoint(enterprise_id: int, payload: PersonRefIn):
    from flask import current_app

    check(ACCESS_MANAGEMENT, sec.MANAGE_SECURITY_OFFICERS, enterprise_id)
    session = get_session()
    return _appointment_out(sec.appoint_enterprise_officer(
        session, ops.get_enterprise(session, enterprise_id), _person(payload.person_id), by=request_context(),
        initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"]))


@api_route("/enterprises/<int:enterprise_id>/security-officers/<int:person_id>/end", "POST",
           summary="End a security officer's appointment", tag="audit", gate=ACCESS_MANAGEMENT,
           response=SecurityOfficerOut)
def enterprise_officer_end(enterprise_id: int, person_id: int):
    check(ACCESS_MANAGEMENT, sec.MANAGE_SECURITY_OFFICERS, enterprise_id)
    session = get_session()
    return _officer_out(sec.end_enterprise_officer(session, ops.get_enterprise(session, enterprise_id),
                                                   _person(person_id), by=request_context()))


@api_route("/security-officers", "GET", summary="The institution's current security officers", tag="officer",
           gate=PORTAL_ADMINISTRATION, response=list[SecurityOfficerOut])
def institution_officers():
    check(PORTAL_ADMINISTRATION, "view_security_officers", None)
    return jsonify([_officer_out(o).model_dump(mode="json") for o in sec.current_officers(get_session(), None)])


@api_route("/security-officers", "POST", summary="Appoint a security officer of the institution (by INSZ)",
           tag="officer", gate=PORTAL_ADMINISTRATION, body=InstitutionOfficerIn, response=OfficerAppointmentOut,
           status=201)
def institution_officer_appoint(payload: InstitutionOfficerIn):
    from flask import current_app

    check(PORTAL_ADMINISTRATION, sec.APPOINT_INSTITUTION_OFFICER, None)
    session = get_session()
    ctx = request_context()
    person = ops.record_person(session, insz=payload.insz, first_name=payload.first_name,
                               last_name=payload.last_name, email=payload.email, by=ctx)
    return _appointment_out(sec.appoint_institution_officer(
        session, person, by=ctx, initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"]))


@api_route("/security-officers/<int:person_id>/end", "POST",
           summary="End the appointment of a security officer of the institution", tag="officer",
           gate=PORTAL_ADMINISTRATION, response=SecurityOfficerOut)
def institution_officer_end(person_id: int):
    check(PORTAL_ADMINISTRATION, sec.APPOINT_INSTITUTION_OFFICER, None)
    return _officer_out(sec.end_institution_officer(get_session(), _person(person_id), by=request_context()))
