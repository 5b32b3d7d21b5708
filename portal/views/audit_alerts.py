"""The security officers' alerts page, its acknowledge button, and the dashboard's summary of open alerts.

Gated like the review screen: the decision point is asked about `beveiligingsaudit` "review" for the
enterprise of the page (?enterprise=; none: every enterprise, the institution's officer only) or of
the alert being acknowledged; the alerts shown are those of the scope its answer grants
(audit.queries.AuditScope). Opening the page, or the dashboard of an officer, scans the new audit
records first (audit.alerts.scan_alerts), so that what is shown is current.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from access import security_officers as sec
from access.clock import BRUSSELS, as_utc, utcnow
from access.decision import decide
from access.errors import DomainError, ValidationError
from access.models import Enterprise, Person
from audit import alerts as al
from audit import queries as q
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.forms import ButtonForm
from portal.gate import check, self_gated
from portal.messages import error_text

bp = Blueprint("audit_alerts", __name__)

STATES = ("open", "acknowledged", "all")
PAGE_PARAMS = ("enterprise", "state")
DASHBOARD_NEWEST = 3
LIST_LIMIT = 200

RULE_TITLES = {
    "failed_logins_account": _l("Repeated failed logins for one account"),
    "failed_logins_ip": _l("Repeated failed logins from one IP address"),
    "denied_burst": _l("A burst of refused accesses"),
    "staff_many_employers": _l("A provider's staff member acting for many employers"),
    "off_hours": _l("Access outside office hours"),
    "large_export": _l("A large export of the audit trail"),
}


# --- shared with the API -----------------------------------------------------------------------------------


# A page view scans at most this many batches (al.SCAN_BATCH records each); the command does the rest.
WEB_SCAN_BATCHES = 5


def scan_now(session) -> al.ScanResult:
    """Bring the alerts up to the last committed audit record (see audit/alerts.py: when scans run)."""
    return al.scan_alerts(session, utcnow(), current_app.extensions["portal.alert_rules"], wait=False,
                          max_batches=WEB_SCAN_BATCHES)


def parse_list_args(session, args) -> tuple[int | None, str, ValidationError | None]:
    """(enterprise to ask the decision point about, state, the first error). An invalid enterprise is
    asked about as none (the institution-wide view) so that only the institution's officer learns
    what was wrong, as on the review screen."""
    unknown = sorted(set(args) - set(PAGE_PARAMS))
    if unknown:
        return None, "open", ValidationError("Unknown parameter '%(name)s'.", unknown[0], name=unknown[0][:40])
    enterprise_id, error = None, None
    if args.get("enterprise"):
        try:
            enterprise_id = q.parse_and_resolve(session, {"enterprise": args.getlist("enterprise")}).enterprise_id
        except ValidationError as invalid:
            error = invalid
    state = args.get("state") or "open"
    if state not in STATES and error is None:
        error = ValidationError("Unknown state '%(value)s': use open, acknowledged or all.", "state",
                                value=state[:40])
    return enterprise_id, state if state in STATES else "open", error


def alert_scope(session, enterprise_value) -> q.AuditScope:
    """The scope the decision point grants for the enterprise the request names (never the alert's own:
    a refusal's text would tell whose alert an id is); an alert outside it is unknown (404)."""
    from portal.views.audit import requested_enterprise

    return q.AuditScope.from_decision(
        check(sec.SECURITY_AUDIT, "review", requested_enterprise(session, enterprise_value)))


def key_label(alert: al.Alert, names: dict[int, str]) -> str:
    kind, _sep, value = alert.key.partition(":")
    if kind == "person" and value.isdigit():
        return names.get(int(value), alert.key)
    return value or alert.key


def person_names(session, alerts: list[al.Alert]) -> dict[int, str]:
    ids = {int(a.key.split(":", 1)[1]) for a in alerts if a.key.startswith("person:") and a.key[7:].isdigit()}
    if not ids:
        return {}
    return {p.id: p.full_name for p in session.scalars(select(Person).where(Person.id.in_(ids)))}


def enterprise_names(session, alerts: list[al.Alert]) -> dict[int, Enterprise]:
    ids = {a.enterprise_id for a in alerts if a.enterprise_id is not None}
    return {e.id: e for e in session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)))} if ids else {}


def review_url(alert: al.Alert, scope: q.AuditScope) -> str | None:
    params = al.review_filter(alert, scope)
    return url_for("audit.review", **params) if params is not None else None


# --- the page ---------------------------------------------------------------------------------------------------


def _page(session, scope: q.AuditScope, enterprise_id: int | None, state: str, status: int = 200,
          error: str | None = None):
    shown_open = al.alerts(session, scope, state="open", limit=LIST_LIMIT) if state in ("open", "all") else []
    shown_done = (al.alerts(session, scope, state="acknowledged", limit=LIST_LIMIT)
                  if state in ("acknowledged", "all") else [])
    everything = shown_open + shown_done
    names = person_names(session, everything)
    return render_template(
        "audit/alerts.html", open_alerts=shown_open, acknowledged=shown_done, state=state, error=error,
        enterprise=session.get(Enterprise, enterprise_id) if enterprise_id is not None else None,
        enterprises=enterprise_names(session, everything), scope_param=enterprise_id or "",
        titles=RULE_TITLES, key_label=lambda a: key_label(a, names), review_url=lambda a: review_url(a, scope),
        describe=describe, button=ButtonForm(formdata=None),
        moment=lambda v: as_utc(v).astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M") if v else ""), status


@bp.route("/audit/alerts")
@self_gated
def alerts_page():
    session = get_session()
    enterprise_id, state, error = parse_list_args(session, request.args)
    decision = check(sec.SECURITY_AUDIT, "review", enterprise_id)
    scope = q.AuditScope.from_decision(decision)
    if error is not None:
        return _page(session, scope, enterprise_id, state, 422, error_text(error))
    scan_now(session)
    return _page(session, scope, enterprise_id, state)


@bp.route("/audit/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@self_gated
def acknowledge(alert_id: int):
    session = get_session()
    scope = alert_scope(session, request.form.getlist("scope"))
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        alert = al.acknowledge(session, alert_id, scope, by=request_context())
    except DomainError as error:
        return _page(session, scope, scope.enterprise_id, "open", error.status, error_text(error))
    flash(_("Alert acknowledged."), "success")
    back = request.form.get("scope", "")
    return redirect(url_for("audit_alerts.alerts_page", **({"enterprise": back} if back.isdigit() else {}))
                    + f"#alert-{alert.id}")


def describe(alert: al.Alert, key: str) -> str:
    """The alert in one translated sentence."""
    start = as_utc(alert.window_start).astimezone(BRUSSELS)
    end = as_utc(alert.window_end).astimezone(BRUSSELS)
    values: dict[str, Any] = {"count": alert.count, "key": key, "day": start.strftime("%Y-%m-%d"),
                              "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    if alert.rule == "failed_logins_account":
        return _("%(count)s failed logins for the account %(key)s on %(day)s between %(start)s and %(end)s.", **values)
    if alert.rule == "failed_logins_ip":
        return _("%(count)s failed logins from %(key)s on %(day)s between %(start)s and %(end)s.", **values)
    if alert.rule == "denied_burst":
        return _("%(count)s refused accesses by %(key)s on %(day)s between %(start)s and %(end)s.", **values)
    if alert.rule == "staff_many_employers":
        return _("%(key)s acted for %(count)s employers on %(day)s between %(start)s and %(end)s.", **values)
    if alert.rule == "off_hours":
        return _("%(key)s accessed the portal %(count)s time(s) outside office hours on %(day)s.", **values)
    return _("%(key)s exported %(rows)s audit records on %(day)s at %(start)s.", rows=alert.details.get("rows"),
             **values)


# --- the dashboard's block ------------------------------------------------------------------------------------


def dashboard_alerts(session, appointments) -> list[dict[str, Any]]:
    """For each of the officer's appointments the decision point allows (asked, not logged, as for the
    dashboard's application cards): its open alerts count and the newest few. Scans first."""
    subject = current_subject()
    scopes = []
    for appointment in appointments:
        decision = decide(session, subject, appointment.enterprise_id, sec.SECURITY_AUDIT, "review",
                          catalogue=catalogue())
        if decision.allowed:
            scopes.append((appointment, q.AuditScope.from_decision(decision)))
    if not scopes:
        return []
    scan_now(session)
    summaries = []
    for appointment, scope in scopes:
        newest = al.alerts(session, scope, state="open", limit=DASHBOARD_NEWEST)
        names = person_names(session, newest)
        summaries.append({
            "enterprise": appointment.enterprise, "count": al.open_count(session, scope),
            "newest": [{"alert": a, "title": RULE_TITLES[a.rule], "text": describe(a, key_label(a, names))}
                       for a in newest],
            "url": url_for("audit_alerts.alerts_page", **({"enterprise": appointment.enterprise_id}
                                                          if appointment.enterprise_id else {}))})
    return summaries
