"""Portal officers: register enterprises, record links, appoint local administrators, decide proposals;
register service providers, record affiliations with an erkend sociaal secretariaat, oversee every mandate."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from access import operations as ops
from access.catalogue import PORTAL_ADMINISTRATION
from access.errors import DomainError
from access.models import Link
from access.queries import eligible_persons, links_of, search_enterprises
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateStatus
from mandates.queries import all_mandates, mandates_of_employer
from mandates.queries import providers as all_providers
from portal.context import request_context
from portal.database import get_session
from portal.forms import (AffiliationForm, DecisionForm, EndLinkForm, EndMandateForm, EnterpriseForm, LinkForm,
                          MandateFilterForm, PersonChoiceForm, RegisterProviderForm, SearchForm, apply_domain_error,
                          choices)
from portal.gate import gated
from portal.messages import error_text, mandate_status_label, switch_warning_text
from portal.views.mandates import form_status, is_open, scope_groups
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
                           eligible=eligible, mandates=mandates_of_employer(session, enterprise.id),
                           provider=mops.provider_of_enterprise(session, enterprise.id),
                           affiliation_form=forms.get("affiliation_form") or AffiliationForm(formdata=None),
                           switch_warnings=forms.get("switch_warnings") or [], scope_groups=scope_groups), status


@bp.route("/enterprises/<int:enterprise_id>")
@officer_only("view_enterprise")
def enterprise(enterprise_id: int):
    page = _enterprise_page(enterprise_id)
    _record_consultation(enterprise_id)
    return page


def _record_consultation(enterprise_id: int) -> None:
    """The page shows every linked person's INSZ: the data subject view must list this consultation."""
    from audit.subjects import record_consultation

    session = get_session()
    record_consultation(session, request_context(), enterprise_id=enterprise_id, what="enterprise links (INSZ)",
                        person_ids=[link.person_id for link in links_of(session, enterprise_id)])


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


# --- service providers and mandates -------------------------------------------------------------


def _providers_page(status: int = 200, form: RegisterProviderForm | None = None):
    return render_template("officer/providers.html", providers=all_providers(get_session()),
                           form=form or RegisterProviderForm(formdata=None)), status


@bp.route("/providers")
@officer_only("list_providers")
def providers():
    return _providers_page()


@bp.route("/providers", methods=["POST"])
@officer_only("register_provider")
def register_provider():
    form = RegisterProviderForm()
    if not form.validate_on_submit():
        return _providers_page(422, form)
    session = get_session()
    try:
        enterprise = ops.find_enterprise_by_kbo(session, form.kbo.data)
        mops.register_provider(session, enterprise, form.kind.data, form.recognition_number.data,
                               by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _providers_page(form_status(error), form)
    flash(_("%(name)s (%(kbo)s) is registered as a service provider.", name=enterprise.name,
            kbo=enterprise.kbo_display), "success")
    return redirect(url_for("officer.providers"))


@bp.route("/enterprises/<int:enterprise_id>/affiliations", methods=["POST"])
@officer_only("record_affiliation")
def record_affiliation(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = AffiliationForm()
    if not form.validate_on_submit():
        return _enterprise_page(enterprise_id, 422, affiliation_form=form)
    try:
        secretariat = mops.find_provider_by_kbo(session, form.secretariat_kbo.data, "secretariat_kbo")
        result = mops.record_affiliation(
            session, enterprise, secretariat, form.start_date.data, groups=load_groups(), by=request_context(),
            affiliation_number=form.affiliation_number.data, minimum_term_months=form.minimum_term_months.data,
            notice_months=form.notice_months.data, notice_date=form.notice_date.data,
            acknowledge_warnings=form.acknowledge_warnings.data)
    except mops.SwitchNeedsConfirmation as warning:
        # Nothing is written: the officer sees what the switch does not respect, and confirms or not.
        apply_domain_error(form, warning)
        return _enterprise_page(enterprise_id, warning.status, affiliation_form=form,
                                switch_warnings=[switch_warning_text(w) for w in warning.warnings])
    except DomainError as error:
        apply_domain_error(form, error)
        return _enterprise_page(enterprise_id, form_status(error), affiliation_form=form)
    flash(_("Affiliation with %(provider)s recorded from %(day)s.", provider=secretariat.enterprise.name,
            day=result.affiliation.start_date.isoformat()), "success")
    if result.ended is not None:
        flash(_("The affiliation with %(provider)s ends on %(day)s.", provider=result.ended.provider.enterprise.name,
                day=result.ended.end_date.isoformat()), "success")
    for warning in result.warnings:
        flash(_("Recorded although: %(warning)s", warning=switch_warning_text(warning)), "info")
    return redirect(url_for("officer.enterprise", enterprise_id=enterprise_id))


def _mandates_page(status: int = 200, errors: dict[int, str] | None = None):
    form = MandateFilterForm(request.args)
    form.status.choices = choices([("", _("all"))] + [(s.value, mandate_status_label(s)) for s in MandateStatus])
    chosen = None
    if form.status.data:
        try:
            chosen = MandateStatus(form.status.data)
        except ValueError:
            form.status.errors = [_("Choose one of the statuses.")]
            status = 422
    return render_template("officer/mandates.html", mandates=all_mandates(get_session(), chosen), filter_form=form,
                           errors=errors or {}, scope_groups=scope_groups, is_open=is_open), status


@bp.route("/mandates")
@officer_only("list_mandates")
def mandates():
    return _mandates_page()


def _mandate(mandate_id: int) -> Mandate:
    mandate = get_session().get(Mandate, mandate_id)
    if mandate is None:
        abort(404)
    return mandate


@bp.route("/mandates/<int:mandate_id>/revoke", methods=["POST"])
@officer_only("revoke_mandate")
def revoke_mandate(mandate_id: int):
    mandate = _mandate(mandate_id)
    try:
        mops.revoke_mandate(get_session(), mandate, by=request_context())
    except DomainError as error:
        return _mandates_page(error.status, {mandate_id: error_text(error)})
    flash(_("The provider form of %(employer)s for %(provider)s is revoked.", employer=mandate.employer.name,
            provider=mandate.provider.enterprise.name), "success")
    return redirect(url_for("officer.mandates"))


@bp.route("/mandates/<int:mandate_id>/end", methods=["POST"])
@officer_only("end_mandate")
def end_mandate(mandate_id: int):
    mandate = _mandate(mandate_id)
    form = EndMandateForm()
    if not form.validate_on_submit():
        return _mandates_page(422, {mandate_id: _("Give a valid last day.")})
    try:
        mops.end_mandate(get_session(), mandate, form.end_date.data, by=request_context())
    except DomainError as error:
        return _mandates_page(error.status, {mandate_id: error_text(error)})
    if mandate.status is MandateStatus.WITHDRAWN:
        flash(_("The provider form of %(employer)s for %(provider)s is withdrawn.", employer=mandate.employer.name,
                provider=mandate.provider.enterprise.name), "success")
    else:
        flash(_("%(provider)s may act for %(employer)s until %(day)s inclusive.",
                provider=mandate.provider.enterprise.name, employer=mandate.employer.name,
                day=mandate.end_date.isoformat()), "success")
    return redirect(url_for("officer.mandates"))


# --- accounts: second factor reset, sessions, disabling (issue 6) ------------------------------------


def _account_act(enterprise_id: int, person_id: int, act):
    """Run `act(session, person)` for a person shown on an enterprise's page; render the page with the
    outcome (a reset's new credential is shown this once)."""
    from access.errors import DomainError
    from portal.forms import ButtonForm

    session = get_session()
    if not ButtonForm().validate_on_submit():
        return _enterprise_page(enterprise_id, 400)
    try:
        person = _person(session, person_id)
        message, credential = act(session, person)
    except DomainError as error:
        flash(error_text(error), "error")
        return _enterprise_page(enterprise_id, error.status)
    flash(message, "success")
    return _enterprise_page(enterprise_id, credential=credential)


@bp.route("/enterprises/<int:enterprise_id>/persons/<int:person_id>/reset-second-factor", methods=["POST"])
@officer_only("reset_second_factor")
def reset_second_factor(enterprise_id: int, person_id: int):
    def act(session, person):
        credential = ops.reset_second_factor(session, person, by=request_context(),
                                             initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
        return _("The second factor of %(name)s is reset.", name=person.full_name), credential

    return _account_act(enterprise_id, person_id, act)


@bp.route("/enterprises/<int:enterprise_id>/persons/<int:person_id>/end-sessions", methods=["POST"])
@officer_only("end_sessions")
def end_sessions(enterprise_id: int, person_id: int):
    def act(session, person):
        count = ops.end_sessions_of(session, person, by=request_context())
        return _("%(count)s sessions of %(name)s ended.", count=count, name=person.full_name), None

    return _account_act(enterprise_id, person_id, act)


@bp.route("/enterprises/<int:enterprise_id>/persons/<int:person_id>/disable", methods=["POST"])
@officer_only("disable_account")
def disable_account(enterprise_id: int, person_id: int):
    def act(session, person):
        ops.set_account_disabled(session, person, True, by=request_context())
        return _("The account of %(name)s is disabled; its sessions ended.", name=person.full_name), None

    return _account_act(enterprise_id, person_id, act)


@bp.route("/enterprises/<int:enterprise_id>/persons/<int:person_id>/enable", methods=["POST"])
@officer_only("disable_account")
def enable_account(enterprise_id: int, person_id: int):
    def act(session, person):
        ops.set_account_disabled(session, person, False, by=request_context())
        return _("The account of %(name)s is enabled again.", name=person.full_name), None

    return _account_act(enterprise_id, person_id, act)
