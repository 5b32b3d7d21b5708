"""Opening an application for an enterprise: the gateway every application is reached through."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from access import operations as ops
from portal.context import catalogue
from portal.database import get_session
from portal.gate import gated

bp = Blueprint("apps", __name__)

# Applications whose module this installation serves itself.
MODULE_ENDPOINTS = {
    "werkgeversrepertorium_beveiligd": "repertory.secured",
    "wijzigingsvoorstellen": "repertory.proposals",
}


@bp.route("/enterprises/<int:enterprise_id>/apps/<code>")
@gated(lambda enterprise_id, code: code, "open")
def open_application(enterprise_id: int, code: str):
    endpoint = MODULE_ENDPOINTS.get(code)
    if endpoint:
        return redirect(url_for(endpoint, enterprise_id=enterprise_id))
    enterprise = ops.get_enterprise(get_session(), enterprise_id)
    return render_template("apps/open.html", app=catalogue().get(code), enterprise=enterprise)
