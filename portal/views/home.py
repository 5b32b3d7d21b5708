"""The landing page and the dashboard: the applications a person may open, by enterprise and tier."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user

from access.catalogue import ACCESS_MANAGEMENT, Tier
from access.decision import decide
from access.queries import memberships_of
from access.models import Role
from mandates.operations import provider_of_enterprise
from mandates.queries import clients_of_staff, is_provider_staff
from portal.context import catalogue, current_subject
from portal.database import get_session
from portal.gate import public
from portal.urls import safe_local_target
from portal.views.certificates import expiry_warnings

bp = Blueprint("home", __name__)


@bp.route("/")
@public
def index():
    if not current_user.is_authenticated:
        return render_template("home/landing.html")
    session_ = get_session()
    subject = current_subject()
    memberships = memberships_of(session_, subject.person_id)
    cards = []
    for membership in memberships:
        by_tier = {tier: [] for tier in Tier}
        for app in catalogue().applications():
            # Shown, not opened: these decisions are not logged; opening one is.
            decision = decide(session_, subject, membership.enterprise_id, app.code, "open", catalogue=catalogue())
            if decision.allowed:
                by_tier[app.tier].append(app)
        # An administrator of a provider is shown the way to its clients.
        is_provider = (membership.role is not Role.USER
                       and provider_of_enterprise(session_, membership.enterprise_id) is not None)
        cards.append({"membership": membership, "by_tier": by_tier, "is_provider": is_provider,
                      "expiry_warnings": _expiry_warnings(session_, subject, membership)})
    staff = is_provider_staff(session_, subject.person_id)
    from access.security_officers import officer_appointments_of
    from portal.views.audit_alerts import dashboard_alerts

    officer_of = officer_appointments_of(session_, subject.person_id)
    return render_template("home/dashboard.html", cards=cards, subject=subject, is_staff=staff,
                           clients=clients_of_staff(session_, subject.person_id) if staff else [],
                           officer_of=officer_of, alert_summaries=dashboard_alerts(session_, officer_of))


def _expiry_warnings(session_, subject, membership) -> list:
    """Certificates expiring soon (or just expired), shown to whoever may see the enterprise's
    certificates: the decision point is asked, not logged, as for the application cards."""
    if membership.role is Role.USER:
        return []
    if not decide(session_, subject, membership.enterprise_id, ACCESS_MANAGEMENT, "view",
                  catalogue=catalogue()).allowed:
        return []
    return expiry_warnings(membership.enterprise_id)


@bp.route("/lang/<code>", methods=["POST"])
@public
def set_language(code: str):
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["lang"] = code
    return redirect(safe_local_target(request.form.get("next")) or url_for("home.index"))
