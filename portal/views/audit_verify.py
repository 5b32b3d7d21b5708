"""The verify page: the last result of `flask --app wsgi audit verify`, for the institution's security
officer. Verification stays a command line job (minutes on millions of records); the page shows
when it ran, by whom, its result, how old it is and how to run it again.

The chain is global (one chain over every enterprise's records) and a failed result names a record
of any enterprise: the page is the institution's officer's only (the decision point on
`beveiligingsaudit` "review" for no enterprise); an enterprise's officer is refused.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, url_for

from access import security_officers as sec
from access.clock import as_utc, utcnow
from audit.chain import last_verification
from audit.retention import purges
from portal.database import get_session
from portal.gate import check, self_gated
from portal.views import audit as audit_views

bp = Blueprint("audit_verify", __name__)
bp.context_processor(audit_views._helpers)  # moment() and kbo(), as on the review screen

VERIFY_COMMAND = "flask --app wsgi audit verify"
PURGE_COMMAND = "flask --app wsgi audit purge --dry-run"


def verification_facts(session) -> dict:
    """The last verification, its age and the latest retention purges (the page and the API)."""
    last = last_verification(session)
    age = utcnow() - as_utc(last.finished_at) if last is not None else None
    return {"last": last, "age": max(age, timedelta(0)) if age is not None else None,
            "purges": purges(session, limit=10)}


@bp.route("/audit/verification")
@self_gated
def verification():
    check(sec.SECURITY_AUDIT, "review", None)
    facts = verification_facts(get_session())
    last = facts["last"]
    broken_url = (url_for("audit.record_detail", record_id=last.first_broken_record_id)
                  if last is not None and last.first_broken_record_id is not None else None)
    return render_template("audit/verify.html", **facts, broken_url=broken_url, verify_command=VERIFY_COMMAND,
                           purge_command=PURGE_COMMAND)
