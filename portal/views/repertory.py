"""The employer repertory: public search (free tier), secured version and change proposals."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from access import operations as ops
from access.errors import DomainError
from access.models import Enterprise
from mandates.operations import current_affiliation
from portal.context import request_context
from portal.database import get_session
from portal.extensions import limiter
from portal.forms import ProposalForm, SearchForm, apply_domain_error
from portal.gate import check, gated, self_gated
from repertory import operations as repertory_ops

bp = Blueprint("repertory", __name__)

PUBLIC = "werkgeversrepertorium"
SECURED = "werkgeversrepertorium_beveiligd"
PROPOSALS = "wijzigingsvoorstellen"


@bp.route("/repertory")
@limiter.limit("120 per minute")
@gated(PUBLIC, "search", enterprise_arg=None)
def search():
    form = SearchForm(request.args)
    results, status = None, 200
    if form.q.data:
        try:
            results = repertory_ops.search_employers(get_session(), form.q.data)
        except DomainError as error:
            apply_domain_error(form, error)
            status = 422
    return render_template("repertory/search.html", form=form, results=results), status


@bp.route("/repertory/<kbo>")
@limiter.limit("120 per minute")
@self_gated
def public_record(kbo: str):
    enterprise = get_session().scalar(select(Enterprise).where(Enterprise.kbo_number == kbo,
                                                               Enterprise.rsz_number.is_not(None)))
    if enterprise is None:
        abort(404)
    check(PUBLIC, "view", enterprise.id)
    return render_template("repertory/public.html", enterprise=enterprise,
                           affiliation=current_affiliation(get_session(), enterprise.id))


@bp.route("/enterprises/<int:enterprise_id>/repertory")
@gated(SECURED, "view")
def secured(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    return render_template("repertory/secured.html", enterprise=enterprise,
                           facts=repertory_ops.secured_facts(session, enterprise),
                           affiliation=current_affiliation(session, enterprise.id))


@bp.route("/enterprises/<int:enterprise_id>/proposals", methods=["GET", "POST"])
@gated(PROPOSALS, "submit")
def proposals(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = ProposalForm(formdata=request.form if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                repertory_ops.propose_change(
                    session, enterprise, {name: getattr(form, name).data for name in ops.ENTERPRISE_FIELDS},
                    form.motivation.data, by=request_context())
            except DomainError as error:
                apply_domain_error(form, error)
                status = error.status
            else:
                flash(_("Your proposal was sent to the institution."), "success")
                return redirect(url_for("repertory.proposals", enterprise_id=enterprise_id))
        else:
            status = 422
    history = repertory_ops.secured_facts(session, enterprise).proposals
    return render_template("repertory/proposals.html", enterprise=enterprise, form=form, proposals=history,
                           affiliation=current_affiliation(session, enterprise.id)), status
