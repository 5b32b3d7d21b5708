"""The audit trail's review screen (security officers) and the appointment of security officers.

Which records a reviewer may see is the decision point's answer on the function `beveiligingsaudit`
for the enterprise of the filter (none: every enterprise, the institution's officer only); the query
is then run in the scope that answer grants (audit.queries.AuditScope), never wider.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, pgettext

from access import operations as ops
from access import security_officers as sec
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.clock import BRUSSELS, utcnow
from access.errors import DomainError, NotFound, ValidationError
from access.models import Person
from access.queries import eligible_persons
from audit import export
from audit import queries as q
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.forms import (AuditFilterForm, ButtonForm, InstitutionOfficerForm, PersonChoiceForm, SaveFilterForm,
                          apply_domain_error, choices)
from portal.gate import check, gated, self_gated
from portal.messages import error_text

bp = Blueprint("audit", __name__)

PAGING = ("after", "before")


# --- shared with the API -------------------------------------------------------------------------------


def split_args(args) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Query parameters as (filter fields, paging fields), each name with all its values."""
    raw = {name: args.getlist(name) for name in args}
    paging = {name: raw.pop(name) for name in list(raw) if name in PAGING or name == "limit"}
    return raw, paging


def parse_or_error(session, raw: dict) -> tuple[q.AuditFilter | None, ValidationError | None]:
    try:
        return q.parse_and_resolve(session, raw), None
    except ValidationError as error:
        return None, error


def gate_enterprise(session, flt: q.AuditFilter | None, raw: dict) -> int | None:
    """The enterprise the decision point is asked about: the filter's. When the filter is invalid, its
    enterprise field alone if that is valid; else none (the institution-wide view, which only the
    institution's officer may have: anyone else is refused before learning what was wrong)."""
    if flt is not None:
        return flt.enterprise_id
    if "enterprise" not in raw:
        return None
    try:
        return q.parse_and_resolve(session, {"enterprise": raw["enterprise"]}).enterprise_id
    except ValidationError:
        return None


def requested_enterprise(session, value) -> int | None:
    """The enterprise a request names (`enterprise`: an id or a KBO number) for the decision point;
    none or an invalid one: none (the institution-wide question, which only the institution's officer
    passes)."""
    if not value:
        return None
    try:
        return q.parse_and_resolve(session, {"enterprise": value}).enterprise_id
    except ValidationError:
        return None


def record_scope() -> q.AuditScope:
    """The scope for one record: the decision point's answer about the enterprise the request names,
    never about the record's own enterprise (asking about that would tell anyone, by the refusal's
    text, whose record an id is). A record outside the granted scope is then simply unknown (404)."""
    enterprise_id = requested_enterprise(get_session(), request.args.getlist("enterprise"))
    return q.AuditScope.from_decision(check(sec.SECURITY_AUDIT, "review", enterprise_id))


def outcome_label(code: str | None) -> str:
    """The outcome in the reader's language (the code itself stays in the record and the export)."""
    labels = {"allowed": pgettext("audit outcome", "allowed"), "denied": pgettext("audit outcome", "denied"),
              "error": pgettext("audit outcome", "error"), "success": pgettext("audit outcome", "success"),
              "failure": pgettext("audit outcome", "failure")}
    return labels.get(code or "", code or "")


def application_name(code: str | None) -> str | None:
    if not code:
        return None
    from flask_babel import get_locale

    app = catalogue().get(code)
    return app.name(str(get_locale() or "nl")) if app is not None else code


# --- the review screen -----------------------------------------------------------------------------------


def _review_page(session, flt_params: dict[str, str], result: q.AuditPage | None, status: int = 200,
                 error: ValidationError | None = None, save_form: SaveFilterForm | None = None,
                 confirm_export: str | None = None):
    form = AuditFilterForm(formdata=None, data={("from_" if k == "from" else k): v for k, v in flt_params.items()})
    if error is not None:
        field = getattr(form, "from_" if error.field == "from" else (error.field or ""), None)
        if field is not None and error.field in q.FILTER_FIELDS:
            field.errors = [error_text(error)]
        else:
            form.form_errors.append(error_text(error))
    subject = current_subject()
    return render_template(
        "audit/review.html", form=form, result=result, params=flt_params,
        save_form=save_form or SaveFilterForm(formdata=None), saved=q.saved_filters(session, subject.person_id),
        button=ButtonForm(formdata=None), application_name=application_name,
        page_url=lambda **paging: url_for("audit.review", **flt_params, **paging),
        query_string=urlencode(flt_params), confirm_export=confirm_export, outcome_label=outcome_label,
        institution=subject_sees_institution()), status


def subject_sees_institution() -> bool:
    """Whether the reviewer holds the institution-wide view (for the link to the verification page);
    asked of the decision point without logging, as the dashboard's cards are."""
    from access.decision import decide

    return decide(get_session(), current_subject(), None, sec.SECURITY_AUDIT, "review", catalogue=catalogue()).allowed


@bp.route("/audit")
@self_gated
def review():
    session = get_session()
    raw, paging_raw = split_args(request.args)
    flt, error = parse_or_error(session, raw)
    decision = check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, flt, raw))
    params = {k: (v[0] if v else "") for k, v in raw.items() if k in q.FILTER_FIELDS}
    if error is not None:
        return _review_page(session, params, None, 422, error)
    try:
        paging = q.parse_page(paging_raw, max_size=q.PAGE_SIZE)
    except ValidationError as page_error:
        return _review_page(session, flt.params, None, 422, page_error)
    result = q.page(session, flt, q.AuditScope.from_decision(decision), after=paging["after"],
                    before=paging["before"], limit=q.PAGE_SIZE)
    return _review_page(session, flt.params, result)


@bp.route("/audit/records/<int:record_id>")
@self_gated
def record_detail(record_id: int):
    session = get_session()
    row = q.get_row(session, record_id, record_scope())
    if row is None:
        abort(404)
    back = request.args.get("back", "")
    back_url = url_for("audit.review") + ("?" + back if back and back.isprintable() and len(back) < 2000 else "")
    return render_template("audit/record.html", row=row, pretty=q.pretty, application_name=application_name,
                           outcome_label=outcome_label,
                           back_url=back_url)


@bp.route("/audit/filters", methods=["POST"])
@self_gated
def save_filter():
    session = get_session()
    raw = {name: request.form.getlist(name) for name in request.form if name in q.FILTER_FIELDS}
    flt, error = parse_or_error(session, raw)
    check(sec.SECURITY_AUDIT, "review", gate_enterprise(session, flt, raw))
    form = SaveFilterForm()
    params = {k: (v[0] if v else "") for k, v in raw.items()}
    if error is not None:
        return _review_page(session, params, None, 422, error, save_form=form)
    if not form.validate_on_submit():
        return _review_page(session, flt.params, None, 422, save_form=form)
    try:
        q.save_filter(session, current_subject().person_id, form.name.data, flt.params, by=request_context())
    except DomainError as domain_error:
        apply_domain_error(form, domain_error)
        return _review_page(session, flt.params, None, domain_error.status, save_form=form)
    flash(_("Filter saved as %(name)s.", name=form.name.data.strip()), "success")
    return redirect(url_for("audit.review", **flt.params))


@bp.route("/audit/filters/<int:filter_id>/delete", methods=["POST"])
@self_gated
def delete_filter(filter_id: int):
    session = get_session()
    person_id = current_subject().person_id
    saved = None
    if person_id is not None:
        try:
            saved = q.get_saved_filter(session, person_id, filter_id)
        except NotFound:
            saved = None
    enterprise = gate_enterprise(session, None, {"enterprise": [saved.params["enterprise"]]}) \
        if saved is not None and "enterprise" in saved.params else None
    check(sec.SECURITY_AUDIT, "review", enterprise)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if saved is None:
        abort(404)
    q.delete_filter(session, person_id, filter_id, by=request_context())
    flash(_("Saved filter deleted."), "success")
    return redirect(url_for("audit.review", **({"enterprise": saved.params["enterprise"]}
                                               if "enterprise" in saved.params else {})))


# --- the export ------------------------------------------------------------------------------------------------

EXPORT_CONTROLS = ("format", "confirm")


def export_sessions():
    """(open, close) of the session the export's rows are read from once the request has committed: a
    read-only connection of its own on the app's engine. An app given a session factory instead (the
    tests' savepoint session) has no engine, and only that session sees its data: the stream reads
    through it (it is shared, so the end of the request did not close it)."""
    engine = current_app.extensions.get("portal.engine")
    if engine is None:
        session = get_session()
        return (lambda: session), (lambda _: None)
    return (lambda: export.read_only_session(engine)), export.close_read_only_session


def plan_export(session, raw: dict, controls: dict) -> tuple[export.ExportPlan | None, q.AuditFilter | None,
                                                            ValidationError | None]:
    """Ask the decision point about exporting the filter's records, then plan the export in the scope it
    grants (a refusal raises AccessDenied before anything about the filter is told)."""
    flt, error = parse_or_error(session, raw)
    decision = check(sec.SECURITY_AUDIT, "export", gate_enterprise(session, flt, raw))
    if error is not None:
        return None, None, error
    try:
        fmt = export.parse_format(controls.get("format", []))
        confirmed = export.parse_confirm(controls.get("confirm", []))
        return export.plan(session, flt, q.AuditScope.from_decision(decision), fmt, confirmed=confirmed,
                           cap=current_app.config["AUDIT_EXPORT_CAP"]), flt, None
    except ValidationError as plan_error:
        return None, flt, plan_error


def export_response(session, planned: export.ExportPlan):
    """Audit-log the export (committed with the request, before the first byte) and stream its rows."""
    export.record_export(session, request_context(), planned)
    open_session, close_session = export_sessions()
    stamp = utcnow().astimezone(BRUSSELS).strftime("%Y-%m-%d-%H%M")
    response = current_app.response_class(export.stream(open_session, close_session, planned),
                                          content_type=export.FORMATS[planned.fmt])
    response.headers["Content-Disposition"] = \
        f'attachment; filename="audit-records-{stamp}.{export.EXTENSIONS[planned.fmt]}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/audit/export", methods=["POST"])
@self_gated
def export_records():
    """The review screen's export buttons (POST: the export writes its audit record; CSRF checked)."""
    session = get_session()
    raw = {name: request.form.getlist(name) for name in request.form
           if name not in EXPORT_CONTROLS and name != "csrf_token"}
    controls = {name: request.form.getlist(name) for name in EXPORT_CONTROLS if name in request.form}
    planned, flt, error = plan_export(session, raw, controls)
    if error is not None:
        params = flt.params if flt is not None else {k: (v[0] if v else "") for k, v in raw.items()
                                                     if k in q.FILTER_FIELDS}
        confirm = controls.get("format", [""])[0] if isinstance(error, export.ConfirmationRequired) else None
        return _review_page(session, params, None, 422, error, confirm_export=confirm)
    return export_response(session, planned)


# --- security officers of an enterprise (its local administrator) -------------------------------------------


def _enterprise_officers_page(enterprise_id: int, status: int = 200, form: PersonChoiceForm | None = None,
                              credential=None, error: str | None = None):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = form or PersonChoiceForm(formdata=None)
    form.person_id.choices = choices((p.id, p.full_name) for p in eligible_persons(session, enterprise.id))
    return render_template("audit/officers.html", enterprise=enterprise,
                           officers=sec.current_officers(session, enterprise.id), form=form,
                           button=ButtonForm(formdata=None), credential=credential, error=error,
                           appoint_url=url_for("audit.appoint_enterprise_officer", enterprise_id=enterprise.id),
                           end_endpoint="audit.end_enterprise_officer", institution_form=None), status


def _person(person_id: int | None) -> Person:
    person = get_session().get(Person, person_id) if person_id else None
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


@bp.route("/enterprises/<int:enterprise_id>/security-officers")
@gated(ACCESS_MANAGEMENT, "view")
def enterprise_officers(enterprise_id: int):
    return _enterprise_officers_page(enterprise_id)


@bp.route("/enterprises/<int:enterprise_id>/security-officers", methods=["POST"])
@gated(ACCESS_MANAGEMENT, sec.MANAGE_SECURITY_OFFICERS)
def appoint_enterprise_officer(enterprise_id: int):
    form = PersonChoiceForm()
    if not form.validate_on_submit() or not form.person_id.data:
        return _enterprise_officers_page(enterprise_id, 422, form=form)
    session = get_session()
    try:
        appointment = sec.appoint_enterprise_officer(
            session, ops.get_enterprise(session, enterprise_id), _person(form.person_id.data), by=request_context(),
            initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        apply_domain_error(form, error)
        return _enterprise_officers_page(enterprise_id, error.status, form=form)
    flash(_("%(name)s is now a security officer.", name=appointment.officer.person.full_name), "success")
    # Rendered, not redirected: an initial password is shown this once.
    return _enterprise_officers_page(enterprise_id, credential=appointment.credential)


@bp.route("/enterprises/<int:enterprise_id>/security-officers/<int:person_id>/end", methods=["POST"])
@gated(ACCESS_MANAGEMENT, sec.MANAGE_SECURITY_OFFICERS)
def end_enterprise_officer(enterprise_id: int, person_id: int):
    if not ButtonForm().validate_on_submit():
        return _enterprise_officers_page(enterprise_id, 400)
    session = get_session()
    try:
        sec.end_enterprise_officer(session, ops.get_enterprise(session, enterprise_id), _person(person_id),
                                   by=request_context())
    except DomainError as error:
        return _enterprise_officers_page(enterprise_id, error.status, error=error_text(error))
    flash(_("The appointment as security officer ended."), "success")
    return redirect(url_for("audit.enterprise_officers", enterprise_id=enterprise_id))


# --- security officers of the institution (portal officers) ----------------------------------------------


def _institution_officers_page(status: int = 200, form: InstitutionOfficerForm | None = None, credential=None,
                               error: str | None = None):
    session = get_session()
    return render_template("audit/officers.html", enterprise=None, officers=sec.current_officers(session, None),
                           form=None, institution_form=form or InstitutionOfficerForm(formdata=None),
                           button=ButtonForm(formdata=None), credential=credential, error=error,
                           appoint_url=url_for("audit.appoint_institution_officer"),
                           end_endpoint="audit.end_institution_officer"), status


@bp.route("/officer/security-officers")
@gated(PORTAL_ADMINISTRATION, "view_security_officers", enterprise_arg=None)
def institution_officers():
    return _institution_officers_page()


@bp.route("/officer/security-officers", methods=["POST"])
@gated(PORTAL_ADMINISTRATION, sec.APPOINT_INSTITUTION_OFFICER, enterprise_arg=None)
def appoint_institution_officer():
    form = InstitutionOfficerForm()
    if not form.validate_on_submit():
        return _institution_officers_page(422, form=form)
    session = get_session()
    try:
        ctx = request_context()
        person = ops.record_person(session, insz=form.insz.data, first_name=form.first_name.data,
                                   last_name=form.last_name.data, email=form.email.data, by=ctx)
        appointment = sec.appoint_institution_officer(
            session, person, by=ctx, initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        apply_domain_error(form, error)
        return _institution_officers_page(error.status, form=form)
    flash(_("%(name)s is now a security officer of the institution.", name=appointment.officer.person.full_name),
          "success")
    return _institution_officers_page(credential=appointment.credential)


@bp.route("/officer/security-officers/<int:person_id>/end", methods=["POST"])
@gated(PORTAL_ADMINISTRATION, sec.APPOINT_INSTITUTION_OFFICER, enterprise_arg=None)
def end_institution_officer(person_id: int):
    if not ButtonForm().validate_on_submit():
        return _institution_officers_page(400)
    try:
        sec.end_institution_officer(get_session(), _person(person_id), by=request_context())
    except DomainError as error:
        return _institution_officers_page(error.status, error=error_text(error))
    flash(_("The appointment as security officer ended."), "success")
    return redirect(url_for("audit.institution_officers"))


def filter_link(params: dict[str, Any]) -> str:
    return url_for("audit.review", **params)


@bp.context_processor
def _helpers():
    from access.clock import BRUSSELS, as_utc
    from access.validators import format_kbo

    return {"moment": lambda value: as_utc(value).astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M:%S") if value else "",
            "kbo": lambda number: format_kbo(number) if number else ""}
