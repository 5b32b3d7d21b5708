"""Portal officers: register enterprises, record links, appoint local administrators, decide proposals."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from access import operations as ops
from access.catalogue import PORTAL_ADMINISTRATION
from access.errors import DomainError
from access.models import Link
from access.queries import eligible_persons, links_of, search_enterprises
from portal.context import request_context
from portal.database import get_session
from portal.forms import (DecisionForm, EndLinkForm, EnterpriseForm, LinkForm, PersonChoiceForm, SearchForm,
                          apply_domain_error, choices)
from portal.gate import gated
from repertory import operations as repertory_ops

bp = Blueprint("officer", __name__, url_prefix="/officer")


def officer_only(action: str):
    return gated(PORTAL_ADMINISTRATION, action, enterprise_arg=None)


@bp.route("/enterprises")
@officer_only("list_enterprises")
def enterprises():
    form = SearchForm(request.args)
    return render_template("officer/enterprises.html", form=form,
                           enterprises=search_enterprises(get_session(), form.q.data))


@bp.route("/enterprises/new", methods=["GET", "POST"])
@officer_only("register_enterprise")
def new_enterprise():
    form = EnterpriseForm()
    if form.validate_on_submit():
        try:
            enterprise = ops.register_enterprise(
                get_session(), by=request_context(), kbo=form.kbo.data, rsz_number=form.rsz_number.data,
                **{name: getattr(form, name).data for name in ops.ENTERPRISE_FIELDS})
        except DomainError as error:
            apply_domain_error(form, error)
            return render_template("officer/enterprise_new.html", form=form), error.status
        flash(_("Enterprise %(kbo)s registered.", kbo=enterprise.kbo_display), "success")
        return redirect(url_for("officer.enterprise", enterprise_id=enterprise.id))
    return render_template("officer/enterprise_new.html", form=form), 422 if request.method == "POST" else 200


def _enterprise_page(enterprise_id: int, status: int = 200, **forms):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    link_form = forms.get("link_form") or LinkForm(formdata=None)
    appoint_form = forms.get("appoint_form") or PersonChoiceForm(formdata=None)
    eligible = eligible_persons(session, enterprise.id)
    appoint_form.person_id.choices = choices((p.id, p.full_name) for p in eligible)
    admin = ops.current_local_admin(session, enterprise.id)
    return render_template("officer/enterprise.html", enterprise=enterprise, links=links_of(session, enterprise.id),
                           link_form=link_form, appoint_form=appoint_form, end_form=EndLinkForm(formdata=None),
                           admin=admin, credential=forms.get("credential"), end_errors=forms.get("end_errors"),
                           eligible=eligible), status


@bp.route("/enterprises/<int:enterprise_id>")
@officer_only("view_enterprise")
def enterprise(enterprise_id: int):
    return _enterprise_page(enterprise_id)


@bp.route("/enterprises/<int:enterprise_id>/links", methods=["POST"])
@officer_only("record_link")
def add_link(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = LinkForm()
    if not form.validate_on_submit():
        return _enterprise_page(enterprise_id, 422, link_form=form)
    try:
        ctx = request_context()
        person = ops.record_person(session, insz=form.insz.data, first_name=form.first_name.data,
                                   last_name=form.last_name.data, email=form.email.data, by=ctx)
        ops.add_link(session, enterprise, person, form.kind.data, form.start_date.data, form.end_date.data, by=ctx)
    except DomainError as error:
        apply_domain_error(form, error)
        return _enterprise_page(enterprise_id, error.status, link_form=form)
    flash(_("Link recorded."), "success")
    return redirect(url_for("officer.enterprise", enterprise_id=enterprise_id))


@bp.route("/enterprises/<int:enterprise_id>/links/<int:link_id>/end", methods=["POST"])
@officer_only("end_link")
def end_link(enterprise_id: int, link_id: int):
    session = get_session()
    link = session.get(Link, link_id)
    if link is None or link.enterprise_id != enterprise_id:
        return _enterprise_page(enterprise_id, 404, end_errors={link_id: _("Unknown link.")})
    form = EndLinkForm()
    if not form.validate_on_submit():
        return _enterprise_page(enterprise_id, 422, end_errors={link_id: _("Give a valid end date.")})
    try:
        ops.end_link(session, link, form.end_date.data, by=request_context())
    except DomainError as error:
        from portal.messages import error_text

        return _enterprise_page(enterprise_id, error.status, end_errors={link_id: error_text(error)})
    flash(_("Link ended on %(day)s.", day=form.end_date.data.isoformat()), "success")
    return redirect(url_for("officer.enterprise", enterprise_id=enterprise_id))


@bp.route("/enterprises/<int:enterprise_id>/local-admin", methods=["POST"])
@officer_only("appoint_local_admin")
def appoint(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = PersonChoiceForm()
    if not form.validate_on_submit() or form.person_id.data is None:
        return _enterprise_page(enterprise_id, 422, appoint_form=form)
    try:
        person = _person(session, form.person_id.data)
        appointment = ops.appoint_local_admin(session, enterprise, person, by=request_context(),
                                              initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        apply_domain_error(form, error)
        return _enterprise_page(enterprise_id, error.status, appoint_form=form)
    flash(_("%(name)s is now the local administrator.", name=person.full_name), "success")
    # Rendered, not redirected: the initial password is shown this once and never again.
    return _enterprise_page(enterprise_id, credential=appointment.credential)


def _person(session, person_id: int):
    from access.errors import NotFound
    from access.models import Person

    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


@bp.route("/proposals")
@officer_only("list_proposals")
def proposals():
    return render_template("officer/proposals.html", proposals=repertory_ops.pending_proposals(get_session()),
                           form=DecisionForm(formdata=None))


@bp.route("/proposals/<int:proposal_id>", methods=["POST"])
@officer_only("decide_proposal")
def decide_proposal(proposal_id: int):
    session = get_session()
    form = DecisionForm()
    if not form.validate_on_submit() or form.accept.data not in ("yes", "no"):
        flash(_("Choose accept or reject."), "error")
        return render_template("officer/proposals.html", proposals=repertory_ops.pending_proposals(session),
                               form=form), 422
    try:
        proposal = repertory_ops.get_proposal(session, proposal_id)
        repertory_ops.decide_proposal(session, proposal, form.accept.data == "yes", form.note.data,
                                      by=request_context())
    except DomainError as error:
        from portal.messages import error_text

        flash(error_text(error), "error")
        return render_template("officer/proposals.html", proposals=repertory_ops.pending_proposals(session),
                               form=form), error.status
    flash(_("Proposal %(id)s decided.", id=proposal_id), "success")
    return redirect(url_for("officer.proposals"))
