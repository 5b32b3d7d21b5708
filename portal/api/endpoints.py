"""The API's operations. Each parses, asks the decision point, calls an operation, returns JSON."""
from __future__ import annotations

from flask import current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from access import operations as ops
from access.clock import as_utc
from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION
from access.decision import decide
from access.errors import NotFound
from access.models import Enterprise, Link, Person, Role
from access.queries import access_matrix, links_of, memberships_of
from portal.api import schemas as s
from portal.api.registry import api_route, bp
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.errors import problem
from portal.extensions import limiter
from portal.gate import check
from repertory import operations as repertory_ops
from repertory.models import ChangeProposal


def _enterprise_out(enterprise: Enterprise) -> s.EnterpriseOut:
    return s.EnterpriseOut(id=enterprise.id, kbo=enterprise.kbo_number, name=enterprise.name,
                           street=enterprise.street, postal_code=enterprise.postal_code, city=enterprise.city,
                           legal_form=enterprise.legal_form, rsz_number=enterprise.rsz_number,
                           joint_committee=enterprise.joint_committee, employer=enterprise.is_employer)


def _link_out(link: Link) -> s.LinkOut:
    return s.LinkOut(id=link.id, person_id=link.person_id, person=link.person.full_name, kind=link.kind.value,
                     start_date=link.start_date, end_date=link.end_date)


def _credential(credential) -> s.Credential | None:
    if credential is None:
        return None
    return s.Credential(user_id=credential.user_id, initial_password=credential.password,
                        expires_at=credential.expires_at)


def _proposal_out(p: ChangeProposal) -> s.ProposalOut:
    return s.ProposalOut(id=p.id, enterprise_id=p.enterprise_id, status=p.status.value, changes=p.changes,
                         motivation=p.motivation, proposed_at=p.proposed_at, decided_at=p.decided_at,
                         decision_note=p.decision_note)


def _person(person_id: int) -> Person:
    person = get_session().get(Person, person_id)
    if person is None:
        raise NotFound("Unknown person.", "person_id")
    return person


# --- session ------------------------------------------------------------------------------


def _session_out() -> s.SessionOut:
    if not current_user.is_authenticated:
        return s.SessionOut(authenticated=False, csrf_token=generate_csrf())
    from portal.views.account import second_factor_state

    account = current_user.account
    return s.SessionOut(authenticated=True, csrf_token=generate_csrf(), login_name=account.login_name,
                        person_id=account.person_id, portal_officer=account.is_portal_officer,
                        must_choose_credentials=account.must_choose_credentials,
                        second_factor=second_factor_state(),
                        second_factor_at=as_utc(current_user.user_session.second_factor_at)
                        if current_user.user_session.second_factor_at else None)


def _address_wait_problem():
    """A 429 problem (with Retry-After) while this address waits after too many failed attempts."""
    from portal.auth import address_wait
    from portal.views.account import TOO_MANY_ATTEMPTS

    wait = address_wait()
    if not wait:
        return None
    response = problem(429, "too-many-attempts", TOO_MANY_ATTEMPTS % {"seconds": wait})
    response.headers["Retry-After"] = str(wait)
    return response


@api_route("/session", "GET", summary="The current session and a CSRF token for unsafe requests", tag="session",
           gate="public", response=s.SessionOut)
def session_info():
    return _session_out()


@api_route("/session", "POST", summary="Log in (session cookie)", tag="session", gate="public", body=s.LoginIn,
           response=s.SessionOut)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def login(payload: s.LoginIn):
    from portal.auth import start_session
    from portal.views.account import login_policy

    wait = _address_wait_problem()
    if wait is not None:
        return wait
    account = ops.authenticate(get_session(), payload.login, payload.password, by=request_context(),
                               policy=login_policy())
    if account is None:
        from portal.auth import count_address_failure

        count_address_failure()
        return problem(401, "login-failed", ops.GENERIC_LOGIN_FAILURE)
    start_session(account)
    return _session_out()


@api_route("/session", "DELETE", summary="Log out", tag="session", gate="public", status=204)
def logout():
    from portal.auth import end_current_session

    end_current_session("logout")
    return "", 204


@api_route("/session/second-factor", "POST", summary="Second step of a login, or a step-up: a code of the "
           "authenticator app or a recovery code", tag="session", gate="public", body=s.SecondFactorIn,
           response=s.SessionOut)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def second_factor(payload: s.SecondFactorIn):
    from access import second_factor as factors
    from portal.views.account import check_second_factor, complete_second_factor

    if not current_user.is_authenticated:
        return problem(401, "login-required", "Log in first.")
    account = current_user.account
    if not factors.status(get_session(), account).enrolled:
        return problem(409, "no-second-factor", "Set up a second factor first (POST /api/v1/account/totp).")
    wait = _address_wait_problem()
    if wait is not None:
        return wait
    if check_second_factor(account, payload.code) is None:
        return problem(401, "second-factor-failed", factors.WRONG_CODE, field="code")
    complete_second_factor("api")
    return _session_out()


@api_route("/account/credentials", "POST", summary="First login: choose your own user name and password",
           tag="session", gate="public", body=s.CredentialsIn, response=s.SessionOut)
def choose_credentials(payload: s.CredentialsIn):
    if not current_user.is_authenticated:
        return problem(401, "login-required", "Log in first.")
    from portal.auth import start_session

    account = current_user.account
    ops.choose_credentials(get_session(), account, payload.username, payload.password, by=request_context())
    start_session(account)
    return _session_out()


# --- the person's applications ----------------------------------------------------------


@api_route("/me/applications", "GET", summary="The applications you may open, per enterprise", tag="applications",
           gate="public", response=list[s.EnterpriseApplicationsOut])
def my_applications():
    if not current_user.is_authenticated:
        return problem(401, "login-required", "Log in first.")
    session_, subject = get_session(), current_subject()
    out = []
    for membership in memberships_of(session_, subject.person_id):
        apps = []
        for app in catalogue().applications():
            decision = decide(session_, subject, membership.enterprise_id, app.code, "open", catalogue=catalogue())
            if decision.allowed:
                apps.append(s.ApplicationOut(code=app.code, name=app.name("nl"), tier=app.tier.value,
                                             path=decision.path_text))
        out.append(s.EnterpriseApplicationsOut(enterprise=_enterprise_out(membership.enterprise),
                                               role=membership.role.value, applications=apps))
    return jsonify([item.model_dump(mode="json") for item in out])


@api_route("/enterprises/<int:enterprise_id>/apps/<code>", "GET", summary="Open an application for an enterprise",
           tag="applications", gate="application in the path", response=s.ApplicationOut)
def open_application(enterprise_id: int, code: str):
    decision = check(code, "open", enterprise_id)
    app = catalogue().get(code)
    return s.ApplicationOut(code=app.code, name=app.name("nl"), tier=app.tier.value, path=decision.path_text)


# --- portal officers ----------------------------------------------------------------------


@api_route("/enterprises", "POST", summary="Register an enterprise", tag="officer", gate=PORTAL_ADMINISTRATION,
           body=s.EnterpriseIn, response=s.EnterpriseOut, status=201)
def register_enterprise(payload: s.EnterpriseIn):
    check(PORTAL_ADMINISTRATION, "register_enterprise", None)
    data = payload.model_dump()
    enterprise = ops.register_enterprise(get_session(), by=request_context(), kbo=data.pop("kbo"),
                                         rsz_number=data.pop("rsz_number"), **data)
    return _enterprise_out(enterprise)


@api_route("/enterprises/<int:enterprise_id>", "GET", summary="An enterprise and its links", tag="officer",
           gate=PORTAL_ADMINISTRATION, response=s.EnterpriseOut)
def get_enterprise(enterprise_id: int):
    check(PORTAL_ADMINISTRATION, "view_enterprise", None)
    enterprise = ops.get_enterprise(get_session(), enterprise_id)
    data = _enterprise_out(enterprise).model_dump(mode="json")
    data["links"] = [_link_out(link).model_dump(mode="json") for link in links_of(get_session(), enterprise_id)]
    return data


@api_route("/enterprises/<int:enterprise_id>/links", "POST", summary="Record a person's link with an enterprise",
           tag="officer", gate=PORTAL_ADMINISTRATION, body=s.LinkIn, response=s.LinkOut, status=201)
def add_link(enterprise_id: int, payload: s.LinkIn):
    check(PORTAL_ADMINISTRATION, "record_link", None)
    session_, ctx = get_session(), request_context()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    person = ops.record_person(session_, insz=payload.insz, first_name=payload.first_name,
                               last_name=payload.last_name, email=payload.email, by=ctx)
    link = ops.add_link(session_, enterprise, person, payload.kind, payload.start_date, payload.end_date, by=ctx)
    return _link_out(link)


@api_route("/links/<int:link_id>/end", "POST", summary="End a link", tag="officer", gate=PORTAL_ADMINISTRATION,
           body=s.EndLinkIn, response=s.LinkOut)
def end_link(link_id: int, payload: s.EndLinkIn):
    check(PORTAL_ADMINISTRATION, "end_link", None)
    link = get_session().get(Link, link_id)
    if link is None:
        raise NotFound("Unknown link.", "link_id")
    return _link_out(ops.end_link(get_session(), link, payload.end_date, by=request_context()))


@api_route("/enterprises/<int:enterprise_id>/local-admin", "POST",
           summary="Appoint the local administrator (the initial password is in this response only)",
           tag="officer", gate=PORTAL_ADMINISTRATION, body=s.PersonRefIn, response=s.AppointmentOut, status=201)
def appoint_local_admin(enterprise_id: int, payload: s.PersonRefIn):
    check(PORTAL_ADMINISTRATION, "appoint_local_admin", None)
    session_ = get_session()
    appointment = ops.appoint_local_admin(session_, ops.get_enterprise(session_, enterprise_id),
                                          _person(payload.person_id), by=request_context(),
                                          initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    return s.AppointmentOut(person_id=payload.person_id, role=Role.LOCAL_ADMIN.value,
                            initial_credential=_credential(appointment.credential))


@api_route("/proposals", "GET", summary="Pending change proposals", tag="officer", gate=PORTAL_ADMINISTRATION,
           response=list[s.ProposalOut])
def pending_proposals():
    check(PORTAL_ADMINISTRATION, "list_proposals", None)
    return jsonify([_proposal_out(p).model_dump(mode="json") for p in repertory_ops.pending_proposals(get_session())])


@api_route("/proposals/<int:proposal_id>/decision", "POST", summary="Accept or reject a change proposal",
           tag="officer", gate=PORTAL_ADMINISTRATION, body=s.ProposalDecisionIn, response=s.ProposalOut)
def decide_proposal(proposal_id: int, payload: s.ProposalDecisionIn):
    check(PORTAL_ADMINISTRATION, "decide_proposal", None)
    session_ = get_session()
    proposal = repertory_ops.get_proposal(session_, proposal_id)
    return _proposal_out(repertory_ops.decide_proposal(session_, proposal, payload.accept, payload.note,
                                                       by=request_context()))


# --- local administrators ---------------------------------------------------------------


@api_route("/enterprises/<int:enterprise_id>/access", "GET", summary="Users × applications of an enterprise",
           tag="access management", gate=ACCESS_MANAGEMENT, response=s.MatrixOut)
def access(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view", enterprise_id)
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    apps = [a.code for a in catalogue().grantable() if not a.employer_only or enterprise.is_employer]
    rows = [s.MatrixRowOut(person_id=r.person.id, name=r.person.full_name, role=r.role.value,
                           under_direct_authority=r.under_authority, rights=sorted(r.rights))
            for r in access_matrix(session_, enterprise)]
    return s.MatrixOut(enterprise=_enterprise_out(enterprise), applications=apps, rows=rows)


@api_route("/enterprises/<int:enterprise_id>/members", "POST", summary="Add a user or appoint a co-administrator",
           tag="access management", gate=ACCESS_MANAGEMENT, body=s.DesignateIn, response=s.AppointmentOut,
           status=201)
def designate(enterprise_id: int, payload: s.DesignateIn):
    role = Role(payload.role)
    session_ = get_session()
    check(ACCESS_MANAGEMENT, ops.membership_action(session_, enterprise_id, payload.person_id, role), enterprise_id)
    appointment = ops.designate(session_, ops.get_enterprise(session_, enterprise_id), _person(payload.person_id),
                                role, by=request_context(),
                                initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    return s.AppointmentOut(person_id=payload.person_id, role=role.value,
                            initial_credential=_credential(appointment.credential))


@api_route("/enterprises/<int:enterprise_id>/members/<int:person_id>", "DELETE",
           summary="End a user's or co-administrator's role (and his rights)", tag="access management",
           gate=ACCESS_MANAGEMENT, status=204)
def remove_member(enterprise_id: int, person_id: int):
    session_ = get_session()
    check(ACCESS_MANAGEMENT, ops.membership_action(session_, enterprise_id, person_id, None), enterprise_id)
    ops.remove_member(session_, ops.get_enterprise(session_, enterprise_id), _person(person_id), by=request_context())
    return "", 204


@api_route("/enterprises/<int:enterprise_id>/rights/<int:person_id>/<application>", "PUT",
           summary="Grant a right on an application", tag="access management", gate=ACCESS_MANAGEMENT,
           response=s.RightOut)
def grant(enterprise_id: int, person_id: int, application: str):
    check(ACCESS_MANAGEMENT, "manage_rights", enterprise_id)
    session_ = get_session()
    ops.grant_right(session_, ops.get_enterprise(session_, enterprise_id), _person(person_id), application,
                    catalogue=catalogue(), by=request_context())
    return s.RightOut(person_id=person_id, application=application, granted=True)


@api_route("/enterprises/<int:enterprise_id>/rights/<int:person_id>/<application>", "DELETE",
           summary="Revoke a right", tag="access management", gate=ACCESS_MANAGEMENT, response=s.RightOut)
def revoke(enterprise_id: int, person_id: int, application: str):
    check(ACCESS_MANAGEMENT, "manage_rights", enterprise_id)
    session_ = get_session()
    ops.revoke_right(session_, ops.get_enterprise(session_, enterprise_id), _person(person_id), application,
                     by=request_context())
    return s.RightOut(person_id=person_id, application=application, granted=False)


@api_route("/enterprises/<int:enterprise_id>/hand-over", "POST", summary="Hand the local administrator role over",
           tag="access management", gate=ACCESS_MANAGEMENT, body=s.PersonRefIn, response=s.AppointmentOut)
def hand_over(enterprise_id: int, payload: s.PersonRefIn):
    check(ACCESS_MANAGEMENT, "hand_over", enterprise_id)
    session_ = get_session()
    appointment = ops.hand_over_local_admin(session_, ops.get_enterprise(session_, enterprise_id),
                                            _person(payload.person_id), by=request_context(),
                                            initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    return s.AppointmentOut(person_id=payload.person_id, role=Role.LOCAL_ADMIN.value,
                            initial_credential=_credential(appointment.credential))


# --- the employer repertory ----------------------------------------------------------------


@api_route("/repertory", "GET", summary="Search employers (free access)", tag="repertory",
           gate="werkgeversrepertorium", response=list[s.EnterpriseOut], query={"q": "name, KBO or RSZ number"})
def repertory_search():
    check("werkgeversrepertorium", "search", None)
    results = repertory_ops.search_employers(get_session(), request.args.get("q", ""))
    return jsonify([_enterprise_out(e).model_dump(mode="json") for e in results])


@api_route("/enterprises/<int:enterprise_id>/repertory", "GET", summary="The secured version of an employer's record",
           tag="repertory", gate="werkgeversrepertorium_beveiligd", response=s.SecuredRecordOut)
def repertory_secured(enterprise_id: int):
    decision = check("werkgeversrepertorium_beveiligd", "view", enterprise_id)
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    facts = repertory_ops.secured_facts(session_, enterprise)
    return s.SecuredRecordOut(
        enterprise=_enterprise_out(enterprise),
        local_administrator=facts.local_admin.full_name if facts.local_admin else None,
        users=facts.users, rights=facts.rights, links=[_link_out(link) for link in facts.links],
        history=[{"changed_at": h.changed_at.isoformat(), "source": h.source, "changes": h.changes,
                  "certificate": h.certificate.fingerprint if h.certificate is not None else None}
                 for h in facts.history],
        proposals=[_proposal_out(p) for p in facts.proposals], access_path=decision.path_text)


@api_route("/enterprises/<int:enterprise_id>/proposals", "POST", summary="Propose a change to the employer's record",
           tag="repertory", gate="wijzigingsvoorstellen", body=s.ProposalIn, response=s.ProposalOut, status=201)
def propose(enterprise_id: int, payload: s.ProposalIn):
    check("wijzigingsvoorstellen", "submit", enterprise_id)
    session_ = get_session()
    values = payload.model_dump(exclude={"motivation"})
    proposal = repertory_ops.propose_change(session_, ops.get_enterprise(session_, enterprise_id), values,
                                            payload.motivation, by=request_context())
    return _proposal_out(proposal)
