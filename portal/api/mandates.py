"""The API of issue 3: service providers, affiliations, provider forms, staff assignments, and the
staff member's list of clients. Each endpoint parses, asks the decision point, calls an operation
of mandates.operations and returns JSON; the request's commit is portal.database's."""
from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext
from flask_login import current_user

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.clock import today
from access.errors import NotFound, ValidationError
from access.models import Enterprise, Person
from access.queries import access_matrix
from mandates import operations as mops
from mandates import queries as mq
from mandates.groups import Groups, load_groups
from mandates.models import Mandate, MandateStatus, Provider
from portal.api import mandate_schemas as m
from portal.api import schemas as s
from portal.api.endpoints import _enterprise_out
from portal.api.registry import api_route
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.errors import problem
from portal.gate import check
from portal.messages import error_text


def _groups() -> Groups:
    return load_groups()


def _party(enterprise: Enterprise) -> m.PartyOut:
    return m.PartyOut(id=enterprise.id, kbo=enterprise.kbo_number, name=enterprise.name)


def _provider_out(provider: Provider) -> m.ProviderOut:
    return m.ProviderOut(id=provider.id, enterprise=_party(provider.enterprise), kind=provider.kind.value,
                         recognition_number=provider.recognition_number, registered_at=provider.registered_at)


def _mandate_out(mandate: Mandate) -> m.MandateOut:
    groups = _groups()
    by_group: dict[str, list[str]] = {}
    for item in mandate.scope:  # the scope as it was frozen at filing, not today's configuration
        by_group.setdefault(item.application_group, []).append(item.application)
    group_out = []
    for code, applications in by_group.items():
        known = groups.get(code)
        group_out.append(m.GroupOut(code=code, name=known.name("nl") if known else code, applications=applications))
    return m.MandateOut(
        id=mandate.id, kind=mandate.kind.value, status=mandate.status.value, active_today=mandate.active_on(today()),
        employer=_party(mandate.employer), provider=_party(mandate.provider.enterprise),
        provider_kind=mandate.provider.kind.value, groups=group_out, applications=mandate.applications(),
        start_date=mandate.start_date, effective_from=mandate.effective_from, end_date=mandate.end_date,
        contract_declared=mandate.contract_declared, contract_date=mandate.contract_date,
        contract_reference=mandate.contract_reference, affiliation_number=mandate.affiliation_number,
        minimum_term_months=mandate.minimum_term_months, notice_months=mandate.notice_months,
        notice_date=mandate.notice_date, filed_at=mandate.filed_at, decided_at=mandate.decided_at,
        ended_at=mandate.ended_at)


def _dump(items) -> object:
    return jsonify([item.model_dump(mode="json") for item in items])


def _mandate_of_employer(employer_id: int, mandate_id: int) -> Mandate:
    """Another employer's mandate answers exactly like one that does not exist."""
    mandate = get_session().get(Mandate, mandate_id)
    if mandate is None or mandate.employer_id != employer_id:
        raise NotFound("Unknown mandate.", "mandate_id")
    return mandate


def _provider_enterprise(enterprise_id: int) -> Enterprise:
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    if mops.provider_of_enterprise(session_, enterprise_id) is None:
        raise NotFound("%(kbo)s is not a registered service provider.", "enterprise_id",
                       kbo=enterprise.kbo_display)
    return enterprise


def _mandate_of_provider(provider_enterprise: Enterprise, mandate_id: int) -> Mandate:
    """Another provider's client answers exactly like a mandate that does not exist."""
    mandate = get_session().get(Mandate, mandate_id)
    if mandate is None or mandate.provider.enterprise_id != provider_enterprise.id:
        raise NotFound("%(kbo)s has no mandate for this client.", "mandate_id", kbo=provider_enterprise.kbo_display)
    return mandate


def _person(person_id: int) -> Person:
    person = get_session().get(Person, person_id)
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


# --- the groups of applications (configuration) ---------------------------------------------


@api_route("/mandate-groups", "GET", summary="The groups of applications an employer can entrust to a provider",
           tag="mandates", gate="public", response=list[m.MandateGroupOut])
def mandate_groups():
    return _dump(m.MandateGroupOut(code=g.code, names=g.names, applications=list(g.applications),
                                   secretariat_default=g.secretariat_default) for g in _groups().all())


# --- portal officers ----------------------------------------------------------------------


@api_route("/providers", "POST", summary="Register an enterprise as a service provider", tag="officer",
           gate=PORTAL_ADMINISTRATION, body=m.ProviderIn, response=m.ProviderOut, status=201)
def register_provider(payload: m.ProviderIn):
    check(PORTAL_ADMINISTRATION, "register_provider", None)
    session_ = get_session()
    enterprise = ops.find_enterprise_by_kbo(session_, payload.kbo)
    return _provider_out(mops.register_provider(session_, enterprise, payload.kind, payload.recognition_number,
                                                by=request_context()))


@api_route("/providers", "GET", summary="The registered service providers", tag="officer",
           gate=PORTAL_ADMINISTRATION, response=list[m.ProviderOut])
def list_providers():
    check(PORTAL_ADMINISTRATION, "list_providers", None)
    return _dump(_provider_out(p) for p in mq.providers(get_session()))


@api_route("/enterprises/<int:enterprise_id>/affiliations", "POST",
           summary="Record an employer's affiliation with an erkend sociaal secretariaat (a switch ends the "
                   "current one the day before)", tag="officer", gate=PORTAL_ADMINISTRATION, body=m.AffiliationIn,
           response=m.AffiliationOut, status=201)
def record_affiliation(enterprise_id: int, payload: m.AffiliationIn):
    check(PORTAL_ADMINISTRATION, "record_affiliation", None)
    session_ = get_session()
    employer = ops.get_enterprise(session_, enterprise_id)
    secretariat = mops.find_provider_by_kbo(session_, payload.secretariat_kbo, "secretariat_kbo")
    try:
        result = mops.record_affiliation(
            session_, employer, secretariat, payload.start_date, groups=_groups(), by=request_context(),
            affiliation_number=payload.affiliation_number, minimum_term_months=payload.minimum_term_months,
            notice_months=payload.notice_months, notice_date=payload.notice_date,
            acknowledge_warnings=payload.acknowledge_warnings)
    except mops.SwitchNeedsConfirmation as error:
        # Nothing is written (the 422 rolls the request back); the officer confirms with acknowledge_warnings.
        return problem(422, "confirmation-required", error_text(error), field=error.field,
                       warnings=[_warning_text(w) for w in error.warnings])
    return m.AffiliationOut(affiliation=_mandate_out(result.affiliation),
                            ended=_mandate_out(result.ended) if result.ended is not None else None,
                            warnings=[_warning_text(w) for w in result.warnings])


def _warning_text(warning: mops.SwitchWarning) -> str:
    template = gettext(warning.template)
    try:
        return template % warning.params if warning.params else template
    except (KeyError, ValueError, TypeError):
        return warning.text


@api_route("/mandates", "GET", summary="Every affiliation and provider form, newest first", tag="officer",
           gate=PORTAL_ADMINISTRATION, response=list[m.MandateOut],
           query={"status": "pending, accepted, declined, withdrawn or revoked"})
def list_mandates():
    check(PORTAL_ADMINISTRATION, "list_mandates", None)
    status = None
    if request.args.get("status"):
        try:
            status = MandateStatus(request.args["status"])
        except ValueError:
            raise ValidationError("Unknown status '%(status)s': choose pending, accepted, declined, withdrawn or "
                                  "revoked.", "status", status=request.args["status"][:40]) from None
    return _dump(_mandate_out(mandate) for mandate in mq.all_mandates(get_session(), status))


@api_route("/mandates/<int:mandate_id>/revoke", "POST", summary="Revoke a provider form: no access from now on",
           tag="officer", gate=PORTAL_ADMINISTRATION, response=m.MandateOut)
def revoke_mandate(mandate_id: int):
    check(PORTAL_ADMINISTRATION, "revoke_mandate", None)
    session_ = get_session()
    return _mandate_out(mops.revoke_mandate(session_, mops.get_mandate(session_, mandate_id), by=request_context()))


@api_route("/mandates/<int:mandate_id>/end", "POST",
           summary="End an affiliation or provider form (end date = the provider's last day)", tag="officer",
           gate=PORTAL_ADMINISTRATION, body=m.EndMandateIn, response=m.MandateOut)
def end_mandate(mandate_id: int, payload: m.EndMandateIn):
    check(PORTAL_ADMINISTRATION, "end_mandate", None)
    session_ = get_session()
    return _mandate_out(mops.end_mandate(session_, mops.get_mandate(session_, mandate_id), payload.end_date,
                                         by=request_context()))


# --- the employer --------------------------------------------------------------------------


@api_route("/enterprises/<int:enterprise_id>/mandates", "GET",
           summary="Who can reach our data and why: own users and rights, providers, recent provider staff activity",
           tag="mandates", gate=ACCESS_MANAGEMENT, response=m.EmployerMandatesOut)
def employer_mandates(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view_providers", enterprise_id)
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    users = [s.MatrixRowOut(person_id=r.person.id, name=r.person.full_name, role=r.role.value,
                            under_direct_authority=r.under_authority, rights=sorted(r.rights))
             for r in access_matrix(session_, enterprise)]
    activity = [m.ActivityOut(provider=_party(a.provider) if a.provider else None, person_id=a.person_id,
                              person=a.person, actions=a.actions, last_at=a.last_at)
                for a in mq.recent_provider_activity(session_, enterprise_id)]
    return m.EmployerMandatesOut(enterprise=_enterprise_out(enterprise), users=users,
                                 providers=[_mandate_out(x) for x in mq.mandates_of_employer(session_, enterprise_id)],
                                 provider_activity=activity)


@api_route("/enterprises/<int:enterprise_id>/mandates", "POST",
           summary="File the provider form: entrust groups of applications to a provider from a quarter",
           tag="mandates", gate=ACCESS_MANAGEMENT, body=m.ProviderFormIn, response=m.MandateOut, status=201)
def file_provider_form(enterprise_id: int, payload: m.ProviderFormIn):
    check(ACCESS_MANAGEMENT, "manage_providers", enterprise_id)
    session_ = get_session()
    employer = ops.get_enterprise(session_, enterprise_id)
    provider = mops.find_provider_by_kbo(session_, payload.provider_kbo)
    mandate = mops.file_provider_form(
        session_, employer, provider, payload.start_date, payload.groups, contract_declared=payload.contract_declared,
        contract_date=payload.contract_date, contract_reference=payload.contract_reference, groups=_groups(),
        by=request_context())
    return _mandate_out(mandate)


@api_route("/enterprises/<int:enterprise_id>/mandates/<int:mandate_id>/end", "POST",
           summary="End a provider relationship (or withdraw a pending form)", tag="mandates", gate=ACCESS_MANAGEMENT,
           body=m.EndMandateIn, response=m.MandateOut)
def employer_end_mandate(enterprise_id: int, mandate_id: int, payload: m.EndMandateIn):
    check(ACCESS_MANAGEMENT, "manage_providers", enterprise_id)
    mandate = _mandate_of_employer(enterprise_id, mandate_id)
    return _mandate_out(mops.end_mandate(get_session(), mandate, payload.end_date, by=request_context()))


# --- the provider ----------------------------------------------------------------------------


@api_route("/enterprises/<int:enterprise_id>/clients", "GET",
           summary="The provider's clients: its mandates with the staff currently assigned", tag="mandates",
           gate=ACCESS_MANAGEMENT, response=list[m.ClientOut])
def provider_clients(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view_clients", enterprise_id)
    session_ = get_session()
    _provider_enterprise(enterprise_id)
    mandates = mq.mandates_of_provider(session_, enterprise_id)
    staff = mq.current_assignments_by_mandate(session_, [mandate.id for mandate in mandates])
    return _dump(m.ClientOut(mandate=_mandate_out(mandate),
                             staff=[m.AssignmentOut(person_id=a.person_id, person=a.person.full_name,
                                                    application=a.application, assigned_at=a.assigned_at)
                                    for a in staff.get(mandate.id, [])])
                 for mandate in mandates)


@api_route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/decision", "POST",
           summary="Accept or decline a provider form", tag="mandates", gate=ACCESS_MANAGEMENT,
           body=m.FormDecisionIn, response=m.MandateOut)
def decide_provider_form(enterprise_id: int, mandate_id: int, payload: m.FormDecisionIn):
    check(ACCESS_MANAGEMENT, "decide_mandates", enterprise_id)
    provider_enterprise = _provider_enterprise(enterprise_id)
    mandate = _mandate_of_provider(provider_enterprise, mandate_id)
    return _mandate_out(mops.decide_provider_form(get_session(), mandate, provider_enterprise, payload.accept,
                                                  by=request_context()))


@api_route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/staff/<int:person_id>/<application>", "PUT",
           summary="Assign a staff member to a client for an application within the mandate", tag="mandates",
           gate=ACCESS_MANAGEMENT, response=m.StaffAssignmentOut)
def assign_staff(enterprise_id: int, mandate_id: int, person_id: int, application: str):
    check(ACCESS_MANAGEMENT, "assign_staff", enterprise_id)
    provider_enterprise = _provider_enterprise(enterprise_id)
    mandate = _mandate_of_provider(provider_enterprise, mandate_id)
    mops.assign_staff(get_session(), provider_enterprise, mandate, _person(person_id), application,
                      catalogue=catalogue(), by=request_context())
    return m.StaffAssignmentOut(mandate_id=mandate_id, person_id=person_id, application=application, assigned=True)


@api_route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/staff/<int:person_id>/<application>",
           "DELETE", summary="End a staff member's assignment to a client for an application", tag="mandates",
           gate=ACCESS_MANAGEMENT, response=m.StaffAssignmentOut)
def unassign_staff(enterprise_id: int, mandate_id: int, person_id: int, application: str):
    check(ACCESS_MANAGEMENT, "assign_staff", enterprise_id)
    provider_enterprise = _provider_enterprise(enterprise_id)
    mandate = _mandate_of_provider(provider_enterprise, mandate_id)
    mops.unassign_staff(get_session(), provider_enterprise, mandate, _person(person_id), application,
                        by=request_context())
    return m.StaffAssignmentOut(mandate_id=mandate_id, person_id=person_id, application=application, assigned=False)


# --- the provider's staff member -------------------------------------------------------------


@api_route("/me/clients", "GET",
           summary="The employers you may act for under a mandate of your provider, and on which applications",
           tag="mandates", gate="public", response=list[m.MyClientOut])
def my_clients():
    if not current_user.is_authenticated:
        return problem(401, "login-required", "Log in first.")
    clients = mq.clients_of_staff(get_session(), current_subject().person_id)
    return _dump(m.MyClientOut(mandate_id=c.mandate.id, employer=_party(c.employer),
                               provider=_party(c.provider_enterprise), applications=list(c.applications))
                 for c in clients)
