"""The data subject view, "Wie heeft mijn gegevens ingezien": a logged-in person sees which accounts and
providers consulted or changed data about him, when, and for which enterprise (audit/subjects.py).
Always about the person logged in, never anyone else: there is no person parameter to change."""
from __future__ import annotations

import re

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _

from access.errors import ValidationError
from audit.subjects import DATA_SUBJECT_ACCESS, PAGE_SIZE, records_about
from portal.context import current_subject
from portal.database import get_session
from portal.gate import check, self_gated
from portal.messages import error_text
from portal.views import audit as audit_views

bp = Blueprint("audit_subject", __name__)
bp.context_processor(audit_views._helpers)  # moment() and kbo()

MAX_PAGE = 100_000


def parse_page_number(raw: str | None) -> int:
    """`page`: 1 (the newest) and up."""
    if raw is None or raw == "":
        return 1
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= MAX_PAGE:  # ASCII digits only ("²" is a digit)
        raise ValidationError("The page must be a whole number from 1 to %(max)s.", "page", max=MAX_PAGE)
    return int(raw)


@bp.route("/account/data-access")
@self_gated
def my_records():
    check(DATA_SUBJECT_ACCESS, "view", None)
    try:
        page = parse_page_number(request.args.get("page"))
    except ValidationError as error:
        return render_template("audit/subject.html", result=None, error=error_text(error),
                               action_label=action_label), 422
    result = records_about(get_session(), current_subject().person_id, page=page, per_page=PAGE_SIZE)
    return render_template("audit/subject.html", result=result, error=None, action_label=action_label,
                           page_url=lambda number: url_for("audit_subject.my_records", page=number))


def action_label(action: str) -> str:
    """What happened, in words (the action code stays visible next to it)."""
    labels = {
        "person.view": _("consulted your identification data (INSZ)"),
        "person.record": _("recorded you as a person"),
        "link.add": _("recorded your tie with the enterprise"),
        "link.end": _("ended your tie with the enterprise"),
        "right.grant": _("granted you a right"),
        "right.revoke": _("revoked a right of yours"),
        "role.appoint_local_admin": _("appointed you local administrator"),
        "role.hand_over": _("handed over the local administrator role"),
        "role.create_portal_officer": _("made you a portal officer"),
        "security_officer.appoint": _("appointed you security officer"),
        "security_officer.end": _("ended your appointment as security officer"),
    }
    if action in labels:
        return labels[action]
    if action.startswith("role.designate_"):
        return _("gave you a role")
    if action.startswith("role.remove_"):
        return _("removed your role")
    return _("changed data about you")
