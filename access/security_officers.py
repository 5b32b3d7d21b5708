"""Security officers: who may review the audit trail, and the decision point's rule for it.

An enterprise's security officer is appointed (and ended) by its local administrator, who may appoint
himself: like a role, the appointment rests on a direct-authority link with the enterprise (checked
when appointing, and again by the decision point at every request, so an ended link ends the
officer's access at once). It is held next to the person's membership role, never instead of it.
The institution's security officer is appointed by a portal officer and reviews every enterprise's
records and the institution-wide view.

Each operation applies the rules, flushes and writes its audit record (before/after); none commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from access.clock import utcnow
from access.errors import Conflict, NotFound
from access.models import DIRECT_AUTHORITY_KINDS, Enterprise, Link, Person, SecurityOfficer
from access.steps import Step, belgian_day
from audit.operations import RequestContext, record

# The portal's function in the catalogue (config/applications.toml, [[function]]).
SECURITY_AUDIT = "beveiligingsaudit"
AUDIT_ACTIONS = frozenset({"review", "export"})
# The local administrator's own act (access.decision.LOCAL_ADMIN_ONLY_ACTIONS).
MANAGE_SECURITY_OFFICERS = "manage_security_officers"
# The portal officer's action (portaalbeheer).
APPOINT_INSTITUTION_OFFICER = "manage_security_officers"


@dataclass(frozen=True)
class OfficerAppointment:
    officer: SecurityOfficer
    credential: object | None  # access.operations.IssuedCredential, shown once


# --- reading --------------------------------------------------------------------------------------


def current_officers(session: Session, enterprise_id: int | None) -> list[SecurityOfficer]:
    """The current security officers of an enterprise, or of the institution (None)."""
    where = (SecurityOfficer.enterprise_id.is_(None) if enterprise_id is None
             else SecurityOfficer.enterprise_id == enterprise_id)
    return list(session.scalars(
        select(SecurityOfficer).options(joinedload(SecurityOfficer.person))
        .where(where, SecurityOfficer.ended_at.is_(None)).order_by(SecurityOfficer.started_at, SecurityOfficer.id)))


def current_officer(session: Session, enterprise_id: int | None, person_id: int) -> SecurityOfficer | None:
    where = (SecurityOfficer.enterprise_id.is_(None) if enterprise_id is None
             else SecurityOfficer.enterprise_id == enterprise_id)
    return session.scalar(select(SecurityOfficer).where(
        where, SecurityOfficer.person_id == person_id, SecurityOfficer.ended_at.is_(None)))


def officer_appointments_of(session: Session, person_id: int | None) -> list[SecurityOfficer]:
    """A person's current appointments (for the dashboard's links; the decision point still decides)."""
    if person_id is None:
        return []
    return list(session.scalars(
        select(SecurityOfficer).options(joinedload(SecurityOfficer.enterprise))
        .where(SecurityOfficer.person_id == person_id, SecurityOfficer.ended_at.is_(None))
        .order_by(SecurityOfficer.enterprise_id.is_not(None), SecurityOfficer.enterprise_id)))


# --- appointing and ending --------------------------------------------------------------------------


def _snapshot(officer: SecurityOfficer | None) -> dict | None:
    if officer is None:
        return None
    return {"security_officer": True, "since": officer.started_at.isoformat() if officer.started_at else None}


def _insert(session: Session, officer: SecurityOfficer, refusal: Conflict) -> None:
    """The partial unique indexes catch a concurrent appointment of the same person."""
    try:
        with session.begin_nested():
            session.add(officer)
            session.flush()
    except IntegrityError:
        raise refusal from None


def appoint_enterprise_officer(session: Session, enterprise: Enterprise, person: Person, *, by: RequestContext,
                               initial_password_days: int = 14) -> OfficerAppointment:
    """The local administrator appoints a security officer of his enterprise (the decision point checked
    that he is its local administrator). The person must be under the enterprise's direct authority;
    his membership role, if any, is left as it is."""
    from access import operations as ops

    ops.require_direct_authority(session, enterprise, person)
    refusal = Conflict("%(person)s is already a security officer of %(kbo)s.", "person_id",
                       person=person.full_name, kbo=enterprise.kbo_display)
    if current_officer(session, enterprise.id, person.id) is not None:
        raise refusal
    officer = SecurityOfficer(enterprise_id=enterprise.id, person_id=person.id, appointed_by_id=by.actor_person_id,
                              started_at=utcnow())
    _insert(session, officer, refusal)
    credential = ops._issue_initial_credential(session, person, initial_password_days)
    ops._send_credential(session, person, enterprise, "security officer", credential)
    record(session, by, action="security_officer.appoint", outcome="success", enterprise_id=enterprise.id,
           details={"person_id": person.id, "person": person.full_name, "scope": "enterprise",
                    "before": None, "after": _snapshot(officer), "initial_credential_issued": credential is not None},
           subject_person_ids=[person.id])
    return OfficerAppointment(officer, credential)


def end_enterprise_officer(session: Session, enterprise: Enterprise, person: Person, *,
                           by: RequestContext) -> SecurityOfficer:
    officer = current_officer(session, enterprise.id, person.id)
    if officer is None:
        raise NotFound("%(person)s is not a security officer of %(kbo)s.", "person_id", person=person.full_name,
                       kbo=enterprise.kbo_display)
    return _end(session, officer, person, by, enterprise_id=enterprise.id, scope="enterprise")


def appoint_institution_officer(session: Session, person: Person, *, by: RequestContext,
                                initial_password_days: int = 14) -> OfficerAppointment:
    """A portal officer appoints a security officer of the institution: he reviews every enterprise."""
    from access import operations as ops

    refusal = Conflict("%(person)s is already a security officer of the institution.", "person_id",
                       person=person.full_name)
    if current_officer(session, None, person.id) is not None:
        raise refusal
    officer = SecurityOfficer(enterprise_id=None, person_id=person.id, appointed_by_id=by.actor_person_id,
                              started_at=utcnow())
    _insert(session, officer, refusal)
    credential = ops._issue_initial_credential(session, person, initial_password_days)
    if credential is not None:
        ops._notify(session, person, "initial-credential", "Your access to the portal",
                    "You were appointed security officer of the institution.\n"
                    f"User-id: {credential.user_id}\nInitial password: {credential.password}\n"
                    f"It expires on {credential.expires_at:%Y-%m-%d %H:%M} UTC. At your first login you choose "
                    "your own user name and password.")
    record(session, by, action="security_officer.appoint", outcome="success",
           details={"person_id": person.id, "person": person.full_name, "scope": "institution",
                    "before": None, "after": _snapshot(officer), "initial_credential_issued": credential is not None},
           subject_person_ids=[person.id])
    return OfficerAppointment(officer, credential)


def end_institution_officer(session: Session, person: Person, *, by: RequestContext) -> SecurityOfficer:
    officer = current_officer(session, None, person.id)
    if officer is None:
        raise NotFound("%(person)s is not a security officer of the institution.", "person_id",
                       person=person.full_name)
    return _end(session, officer, person, by, enterprise_id=None, scope="institution")


def _end(session: Session, officer: SecurityOfficer, person: Person, by: RequestContext, *,
         enterprise_id: int | None, scope: str) -> SecurityOfficer:
    before = _snapshot(officer)
    officer.ended_at = utcnow()
    officer.ended_by_id = by.actor_person_id
    session.flush()
    record(session, by, action="security_officer.end", outcome="success", enterprise_id=enterprise_id,
           details={"person_id": person.id, "person": person.full_name, "scope": scope,
                    "before": before, "after": {"security_officer": False}}, subject_person_ids=[person.id])
    return officer


# --- the decision point's rule ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditAccess:
    allowed: bool
    reason: Step
    path: tuple[Step, ...] = ()


def audit_access(session: Session, person_id: int, enterprise_id: int | None, day: date) -> AuditAccess:
    """May this person review (or export) the audit records of this enterprise, or of every enterprise
    (None)? The institution's security officer may, always; an enterprise's security officer only for
    his enterprise, and only while under its direct authority. Everyone else is refused: portal
    officers, local administrators and providers' staff included (separation of duties)."""
    appointments = list(session.execute(
        select(SecurityOfficer.enterprise_id, SecurityOfficer.started_at).where(
            SecurityOfficer.person_id == person_id, SecurityOfficer.ended_at.is_(None),
            or_(SecurityOfficer.enterprise_id.is_(None),
                SecurityOfficer.enterprise_id == enterprise_id) if enterprise_id is not None
            else SecurityOfficer.enterprise_id.is_(None))))
    institution = next((since for eid, since in appointments if eid is None), None)
    if institution is not None:
        since = belgian_day(institution)
        return AuditAccess(True, Step("allowed", "allowed"), (
            Step("institution-security-officer", f"security officer of the institution since {since}",
                 {"since": since}),))
    if enterprise_id is None:
        return AuditAccess(False, Step("not-institution-security-officer",
                                       "only the institution's security officer reviews every enterprise"))
    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        return AuditAccess(False, Step("unknown-enterprise", "unknown enterprise"))
    kbo = enterprise.kbo_display
    own = next((since for eid, since in appointments if eid == enterprise_id), None)
    if own is None:
        return AuditAccess(False, Step("not-security-officer", f"not a security officer of {kbo}", {"kbo": kbo}))
    link = session.scalar(select(Link).where(
        Link.enterprise_id == enterprise_id, Link.person_id == person_id, Link.kind.in_(DIRECT_AUTHORITY_KINDS),
        Link.start_date <= day, or_(Link.end_date.is_(None), Link.end_date >= day)).order_by(Link.start_date).limit(1))
    if link is None:
        return AuditAccess(False, Step(
            "security-officer-no-authority",
            f"security officer of {kbo}, but not under its direct authority on {day.isoformat()}",
            {"kbo": kbo, "day": day.isoformat()}))
    since = belgian_day(own)
    return AuditAccess(True, Step("allowed", "allowed"), (
        Step("security-officer", f"security officer of {kbo} since {since}", {"kbo": kbo, "since": since}),
        Step("link", f"{link.kind.value} of {kbo} since {link.start_date.isoformat()}",
             {"kind": link.kind.value, "kbo": kbo, "since": link.start_date.isoformat()}),
    ))


# --- access reviews (reviews/) ---------------------------------------------------------------------------

# The action on access management (toegangsbeheer) of starting, following and answering an access review
# campaign: the enterprise's administrators by their role and, next to them, its own security officers
# (access.decision). Revoking what a review lists stays the administrators' act: the decision point is
# asked again for manage_rights (a right) or manage_providers (a mandate's scope).
ACCESS_REVIEW = "access_review"
# Starting a review that revokes what is unanswered at its deadline hands the revocation of every right and
# mandate scope to a scheduled job: only who may revoke both himself (the local administrator) may start it.
ACCESS_REVIEW_AUTO_REVOKE = "access_review_auto_revoke"


def enterprise_officer_access(session: Session, person_id: int, enterprise_id: int, day: date) -> AuditAccess:
    """Is the person a current security officer of this enterprise, under its direct authority on the day?
    Not the institution's officer: reviewing who may reach the enterprise's data is the enterprise's own
    responsibility (seed 001)."""
    from access.operations import direct_authority_link

    enterprise = session.get(Enterprise, enterprise_id)
    if enterprise is None:
        return AuditAccess(False, Step("unknown-enterprise", "unknown enterprise"))
    kbo = enterprise.kbo_display
    officer = current_officer(session, enterprise_id, person_id)
    if officer is None:
        return AuditAccess(False, Step("not-security-officer", f"not a security officer of {kbo}", {"kbo": kbo}))
    link = direct_authority_link(session, enterprise_id, person_id, day)
    if link is None:
        return AuditAccess(False, Step(
            "security-officer-no-authority",
            f"security officer of {kbo}, but not under its direct authority on {day.isoformat()}",
            {"kbo": kbo, "day": day.isoformat()}))
    since = belgian_day(officer.started_at)
    return AuditAccess(True, Step("allowed", "allowed"), (
        Step("security-officer", f"security officer of {kbo} since {since}", {"kbo": kbo, "since": since}),
        Step("link", f"{link.kind.value} of {kbo} since {link.start_date.isoformat()}",
             {"kind": link.kind.value, "kbo": kbo, "since": link.start_date.isoformat()}),
    ))
