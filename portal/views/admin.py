"""The local administrator's access management: users × applications, co-administrators, hand-over."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.errors import DomainError, NotFound
from access.models import Person, Role
from access.queries import access_matrix, eligible_persons
from portal.context import catalogue, request_context
from portal.database import get_session
from portal.forms import ButtonForm, DesignateForm, PersonChoiceForm, apply_domain_error, choices
from portal.gate import check, gated, self_gated
from portal.messages import error_text

bp = Blueprint("admin", __name__, url_prefix="/enterprises/<int:enterprise_id>/access")


def _page(enterprise_id: int, status: int = 200, credential=None, designate_form=None, handover_form=None,
          error: str | None = None):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    eligible = eligible_persons(session, enterprise.id)
    people = choices((p.id, p.full_name) for p in eligible)
    designate_form = designate_form or DesignateForm(formdata=None)
    designate_form.person_id.choices = people
    handover_form = handover_form or PersonChoiceForm(formdata=None, prefix="handover")
    handover_form.person_id.choices = people
    apps = [a for a in catalogue().grantable() if not a.employer_only or enterprise.is_employer]
    return render_template("admin/access.html", enterprise=enterprise, rows=access_matrix(session, enterprise),
                           apps=apps, designate_form=designate_form, handover_form=handover_form,
                           button=ButtonForm(formdata=None), credential=credential, error=error,
                           Role=Role), status


def _person(person_id: int) -> Person:
    person = get_session().get(Person, person_id)
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


@bp.route("")
@gated(ACCESS_MANAGEMENT, "view")
def matrix(enterprise_id: int):
    return _page(enterprise_id)


@bp.route("/members", methods=["POST"])
@self_gated
def designate(enterprise_id: int):
    form = DesignateForm()
    role = Role.CO_ADMIN if form.role.data == "co_admin" else Role.USER
    person_id = form.person_id.data if isinstance(form.person_id.data, int) else 0
    check(ACCESS_MANAGEMENT, ops.membership_action(get_session(), enterprise_id, person_id, role), enterprise_id)
    if not form.validate_on_submit() or not form.person_id.data:
        return _page(enterprise_id, 422, designate_form=form)
    session = get_session()
    try:
        appointment = ops.designate(session, ops.get_enterprise(session, enterprise_id), _person(form.person_id.data),
                                    role, by=request_context(),
                                    initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        apply_domain_error(form, error)
        return _page(enterprise_id, error.status, designate_form=form)
    flash(_("%(name)s added.", name=appointment.membership.person.full_name), "success")
    return _page(enterprise_id, credential=appointment.credential)


@bp.route("/members/<int:person_id>/remove", methods=["POST"])
@self_gated
def remove(enterprise_id: int, person_id: int):
    session = get_session()
    check(ACCESS_MANAGEMENT, ops.membership_action(session, enterprise_id, person_id, None), enterprise_id)
    if not ButtonForm().validate_on_submit():
        return _page(enterprise_id, 400)
    try:
        ops.remove_member(session, ops.get_enterprise(session, enterprise_id), _person(person_id), by=request_context())
    except DomainError as error:
        return _page(enterprise_id, error.status, error=error_text(error))
    flash(_("Role ended; the rights on this enterprise ended with it."), "success")
    return redirect(url_for("admin.matrix", enterprise_id=enterprise_id))


@bp.route("/rights/<int:person_id>/<application>", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "manage_rights")
def toggle_right(enterprise_id: int, person_id: int, application: str):
    if not ButtonForm().validate_on_submit():
        return _page(enterprise_id, 400)
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    grant = request.form.get("grant") == "1"
    try:
        person = _person(person_id)
        if grant:
            ops.grant_right(session, enterprise, person, application, catalogue=catalogue(), by=request_context())
        else:
            ops.revoke_right(session, enterprise, person, application, by=request_context())
    except DomainError as error:
        return _page(enterprise_id, error.status, error=error_text(error))
    return redirect(url_for("admin.matrix", enterprise_id=enterprise_id))


@bp.route("/hand-over", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "hand_over")
def hand_over(enterprise_id: int):
    form = PersonChoiceForm(prefix="handover")
    if not form.validate_on_submit() or not form.person_id.data:
        return _page(enterprise_id, 422, handover_form=form)
    session = get_session()
    try:
        appointment = ops.hand_over_local_admin(session, ops.get_enterprise(session, enterprise_id),
                                                _person(form.person_id.data), by=request_context(),
                                                initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        apply_domain_error(form, error)
        return _page(enterprise_id, error.status, handover_form=form)
    flash(_("%(name)s is now the local administrator; you stay a user.",
            name=appointment.membership.person.full_name), "success")
    if appointment.credential is not None:
        return render_template("admin/handed_over.html", credential=appointment.credential,
                               person=appointment.membership.person)
    return redirect(url_for("home.index"))


@bp.route("/members/<int:person_id>/reset-second-factor", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "reset_second_factor")
def reset_second_factor(enterprise_id: int, person_id: int):
    """The user lost every second factor: a new initial credential, shown once (and sent to him)."""
    if not ButtonForm().validate_on_submit():
        return _page(enterprise_id, 400)
    session = get_session()
    try:
        credential = ops.reset_second_factor(session, _person(person_id), by=request_context(),
                                             enterprise=ops.get_enterprise(session, enterprise_id),
                                             initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    except DomainError as error:
        return _page(enterprise_id, error.status, error=error_text(error))
    flash(_("The second factor of %(name)s is reset; hand over the new initial credential below.",
            name=_person(person_id).full_name), "success")
    return _page(enterprise_id, credential=credential)


@bp.route("/members/<int:person_id>/end-sessions", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "end_sessions")
def end_sessions(enterprise_id: int, person_id: int):
    if not ButtonForm().validate_on_submit():
        return _page(enterprise_id, 400)
    session = get_session()
    try:
        count = ops.end_sessions_of(session, _person(person_id), by=request_context(),
                                    enterprise=ops.get_enterprise(session, enterprise_id))
    except DomainError as error:
        return _page(enterprise_id, error.status, error=error_text(error))
    flash(_("%(count)s sessions of %(name)s ended.", count=count, name=_person(person_id).full_name), "success")
    return redirect(url_for("admin.matrix", enterprise_id=enterprise_id))
