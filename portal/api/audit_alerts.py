"""The security officers' alerts on the API (audit/alerts.py; gated like the review screen).

GET /api/v1/audit/alerts lists the alerts of a scope, newest first (?enterprise= for an enterprise's
officer; without it, every alert: the institution's officer only; ?state=open|acknowledged|all). It
scans the new audit records first, as the alerts page does. POST .../acknowledge marks one alert as
seen (once); the decision point is asked about the alert's enterprise."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify, request, url_for
from pydantic import BaseModel

from access import security_officers as sec
from access.clock import as_utc
from access.models import Enterprise
from audit import alerts as al
from audit import queries as q
from portal.api.registry import api_route
from portal.context import request_context
from portal.database import get_session
from portal.gate import check
from portal.views.audit_alerts import RULE_TITLES, alert_scope, enterprise_names, parse_list_args, scan_now

LIST_QUERY = {
    "enterprise": "the enterprise (id or KBO number); an enterprise's security officer must give his own",
    "state": "open (default), acknowledged or all",
}


class AlertEnterpriseOut(BaseModel):
    id: int
    name: str
    kbo: str


class AlertOut(BaseModel):
    id: int
    rule: str
    title: str
    enterprise: AlertEnterpriseOut | None  # None: the institution's officers only
    key: str
    window_start: datetime
    window_end: datetime
    count: int
    first_record_id: int
    last_record_id: int
    details: Any = None
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by_person_id: int | None
    records: str | None  # the review API filtered on the alert's records (None: outside the caller's scope)


def alert_out(alert: al.Alert, scope: q.AuditScope, enterprises: dict[int, Enterprise]) -> AlertOut:
    enterprise = enterprises.get(alert.enterprise_id) if alert.enterprise_id is not None else None
    params = al.review_filter(alert, scope)
    return AlertOut(
        id=alert.id, rule=alert.rule, title=str(RULE_TITLES[alert.rule]),
        enterprise=AlertEnterpriseOut(id=enterprise.id, name=enterprise.name, kbo=enterprise.kbo_display)
        if enterprise is not None else None,
        key=alert.key, window_start=as_utc(alert.window_start), window_end=as_utc(alert.window_end),
        count=alert.count, first_record_id=alert.first_record_id, last_record_id=alert.last_record_id,
        details=alert.details, created_at=as_utc(alert.created_at),
        acknowledged_at=as_utc(alert.acknowledged_at) if alert.acknowledged_at else None,
        acknowledged_by_person_id=alert.acknowledged_by_id,
        records=url_for("api.audit_records", **params) if params is not None else None)


@api_route("/audit/alerts", "GET", summary="Security alerts of my scope, newest first (scans new records first)",
           tag="audit", gate=sec.SECURITY_AUDIT, response=list[AlertOut], query=LIST_QUERY)
def audit_alerts():
    session = get_session()
    enterprise_id, state, error = parse_list_args(session, request.args)
    scope = q.AuditScope.from_decision(check(sec.SECURITY_AUDIT, "review", enterprise_id))
    if error is not None:
        raise error
    scan_now(session)
    found = al.alerts(session, scope, state=state, limit=500)
    enterprises = enterprise_names(session, found)
    return jsonify([alert_out(a, scope, enterprises).model_dump(mode="json") for a in found])


@api_route("/audit/alerts/<int:alert_id>/acknowledge", "POST", summary="Acknowledge a security alert (once)",
           tag="audit", gate=sec.SECURITY_AUDIT, response=AlertOut,
           query={"enterprise": "the enterprise whose alerts you review (id or KBO number); omitted: the "
                                "institution's view. An alert outside the scope granted is unknown (404)."})
def audit_alert_acknowledge(alert_id: int):
    session = get_session()
    scope = alert_scope(session, request.args.getlist("enterprise"))
    alert = al.acknowledge(session, alert_id, scope, by=request_context())  # outside the scope: 404
    return alert_out(alert, scope, enterprise_names(session, [alert]))
