"""The mandate path of the decision point: a provider's staff member acting for a client employer.

Allowed only along a complete path, every step read at request time:
  1. an active provider relationship on the day (an affiliation with an erkend sociaal
     secretariaat, or an accepted provider form), between effective_from and end_date;
  2. the application within that mandate's scope;
  3. the staff member assigned by the provider to that client and application;
  4. his current designation by the provider, resting on a direct-authority link with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, Integer, String, and_, bindparam, literal_column, or_, select
from sqlalchemy.orm import Session, aliased

from access.models import DIRECT_AUTHORITY_KINDS, Enterprise, Link, Membership, Person
from access.steps import Step, belgian_day
from access.validators import format_kbo
from mandates.models import Mandate, MandateApplication, MandateKind, MandateStatus, Provider, StaffAssignment


@dataclass(frozen=True)
class MandatePathResult:
    allowed: bool
    reason: Step
    path: tuple[Step, ...]
    provider_enterprise_id: int | None


def _direct_authority_link_on(person_id, enterprise_id, day):
    return and_(
        Link.person_id == person_id,
        Link.enterprise_id == enterprise_id,
        # Inlined constants, as in the decision point's own query.
        Link.kind.in_([literal_column(f"'{kind.value}'") for kind in sorted(DIRECT_AUTHORITY_KINDS, key=str)]),
        Link.start_date <= day,
        or_(Link.end_date.is_(None), Link.end_date >= day),
    )


def _build_candidates_query():
    """One row per active mandate of the employer held by a provider that currently designates
    the person, with what the later steps found (NULL where a step fails). Built once: see
    bench/decisions.py for what building a statement per call costs."""
    person_id, employer_id = bindparam("person_id", type_=Integer), bindparam("employer_id", type_=Integer)
    application, day = bindparam("application", type_=String), bindparam("day", type_=Date)
    provider_enterprise = aliased(Enterprise)
    assigner = aliased(Person)
    return (
        select(
            Mandate.kind, Mandate.effective_from,
            provider_enterprise.id, provider_enterprise.kbo_number, provider_enterprise.name,
            MandateApplication.application_group,
            StaffAssignment.assigned_at, assigner.first_name + " " + assigner.last_name,
            Link.kind, Link.start_date,
        )
        .select_from(Mandate)
        .join(Provider, Provider.id == Mandate.provider_id)
        .join(provider_enterprise, provider_enterprise.id == Provider.enterprise_id)
        .join(Membership, and_(Membership.enterprise_id == provider_enterprise.id,
                               Membership.person_id == person_id, Membership.ended_at.is_(None)))
        .outerjoin(MandateApplication, and_(MandateApplication.mandate_id == Mandate.id,
                                            MandateApplication.application == application))
        .outerjoin(StaffAssignment, and_(StaffAssignment.mandate_id == Mandate.id,
                                         StaffAssignment.person_id == person_id,
                                         StaffAssignment.application == application,
                                         StaffAssignment.revoked_at.is_(None)))
        .outerjoin(assigner, assigner.id == StaffAssignment.assigned_by_id)
        .outerjoin(Link, _direct_authority_link_on(person_id, provider_enterprise.id, day))
        .where(
            Mandate.employer_id == employer_id,
            Mandate.status == MandateStatus.ACCEPTED,
            Mandate.effective_from <= day,
            or_(Mandate.end_date.is_(None), Mandate.end_date >= day),
        )
    )


def _build_lapsed_query():
    """Only on refusal: the person's providers that have or had any mandate of this employer."""
    person_id, employer_id = bindparam("person_id", type_=Integer), bindparam("employer_id", type_=Integer)
    provider_enterprise = aliased(Enterprise)
    return (
        select(provider_enterprise.id, provider_enterprise.kbo_number, provider_enterprise.name)
        .select_from(Mandate)
        .join(Provider, Provider.id == Mandate.provider_id)
        .join(provider_enterprise, provider_enterprise.id == Provider.enterprise_id)
        .join(Membership, and_(Membership.enterprise_id == provider_enterprise.id,
                               Membership.person_id == person_id, Membership.ended_at.is_(None)))
        .where(Mandate.employer_id == employer_id)
        .order_by(Mandate.id.desc())
        .limit(1)
    )


def works_for_a_provider_of(person_id, employer_id):
    """EXISTS: the person is currently designated by a provider that has (or had) a mandate of the
    employer. The decision point's own query carries it, so that the enterprise's own people, and
    strangers, never pay for the mandate queries."""
    return (
        select(Mandate.id)
        .join(Provider, Provider.id == Mandate.provider_id)
        .join(Membership, and_(Membership.enterprise_id == Provider.enterprise_id,
                               Membership.person_id == person_id, Membership.ended_at.is_(None)))
        .where(Mandate.employer_id == employer_id)
        .exists()
    )


_CANDIDATES = _build_candidates_query()
_LAPSED = _build_lapsed_query()


def mandate_path(session: Session, person_id: int, employer_id: int, application: str, day: date, *,
                 kbo: str, application_name: str) -> MandatePathResult | None:
    """The mandate path for `person_id` acting for `employer_id`, or None when no provider the
    person works for has ever had a mandate of this employer (the caller's own reason then stands)."""
    params = {"person_id": person_id, "employer_id": employer_id, "application": application, "day": day}
    # Through the session's connection: the decision point's own query has just autoflushed, and the
    # ORM's per-statement set-up would cost ~150 µs more per staff decision (bench/README.md).
    connection = session.connection()
    rows = connection.execute(_CANDIDATES, params).all()
    if not rows:
        lapsed = connection.execute(_LAPSED, {"person_id": person_id, "employer_id": employer_id}).first()
        if lapsed is None:
            return None
        provider_id, provider_kbo, provider_name = lapsed
        provider = f"{provider_name} ({format_kbo(provider_kbo)})"
        return _refuse("no-mandate", f"{provider} has no mandate of {kbo} in force on {day.isoformat()}",
                       provider_id, provider=provider, kbo=kbo, day=day.isoformat())

    # The row that got furthest along the path decides the reason of a refusal.
    def progress(row) -> int:
        scope, assigned, link_kind = row[5], row[6], row[8]
        return 3 if scope and assigned and link_kind else 2 if scope and assigned else 1 if scope else 0

    best = max(rows, key=progress)
    (kind, effective_from, provider_id, provider_kbo, provider_name, group, assigned_at, assigner,
     link_kind, link_start) = best
    provider = f"{provider_name} ({format_kbo(provider_kbo)})"
    stage = progress(best)
    if stage == 0:
        return _refuse("outside-mandate", f"{application_name} is not within the mandate {kbo} gave {provider}",
                       provider_id, provider=provider, kbo=kbo, application=application)
    if stage == 1:
        return _refuse("not-assigned", f"not assigned by {provider} to work for {kbo} on {application_name}",
                       provider_id, provider=provider, kbo=kbo, application=application)
    if stage == 2:
        return _refuse("no-provider-authority",
                       f"not under the direct authority of {provider} on {day.isoformat()}",
                       provider_id, provider=provider, day=day.isoformat())

    since = effective_from.isoformat() if isinstance(effective_from, date) else str(effective_from)[:10]
    provider_kbo_display = format_kbo(provider_kbo)
    link_since = link_start.isoformat() if isinstance(link_start, date) else str(link_start)[:10]
    link_kind_value = getattr(link_kind, "value", link_kind)
    relationship = (
        Step("mandate-affiliation", f"{provider} is the erkend sociaal secretariaat of {kbo} since {since}",
             {"provider": provider, "kbo": kbo, "since": since})
        if MandateKind(getattr(kind, "value", kind)) is MandateKind.AFFILIATION else
        Step("mandate-form", f"{provider} is the service provider of {kbo} by form since {since}",
             {"provider": provider, "kbo": kbo, "since": since})
    )
    assigned_on = belgian_day(assigned_at)
    path = (
        relationship,
        Step("mandate-scope", f"{application_name} within the mandate (group {group})",
             {"application": application, "group": group}),
        Step("staff-assignment", f"assigned to {kbo} for {application_name} by {assigner} on {assigned_on}",
             {"kbo": kbo, "application": application, "by": assigner, "on": assigned_on}),
        Step("link", f"{link_kind_value} of {provider_kbo_display} since {link_since}",
             {"kind": link_kind_value, "kbo": provider_kbo_display, "since": link_since}),
    )
    return MandatePathResult(True, Step("allowed", "allowed"), path, provider_id)


def _refuse(code: str, text: str, provider_enterprise_id: int, **params) -> MandatePathResult:
    return MandatePathResult(False, Step(code, text, params), (), provider_enterprise_id)


def _build_machine_query():
    """The active mandates of the employer held by the client's enterprise, with the scope row of
    the application (NULL when outside the scope)."""
    provider_enterprise_id, employer_id = (bindparam("provider_enterprise_id", type_=Integer),
                                           bindparam("employer_id", type_=Integer))
    application, day = bindparam("application", type_=String), bindparam("day", type_=Date)
    provider_enterprise = aliased(Enterprise)
    return (
        select(Mandate.kind, Mandate.effective_from, provider_enterprise.kbo_number, provider_enterprise.name,
               MandateApplication.application_group)
        .select_from(Mandate)
        .join(Provider, Provider.id == Mandate.provider_id)
        .join(provider_enterprise, provider_enterprise.id == Provider.enterprise_id)
        .outerjoin(MandateApplication, and_(MandateApplication.mandate_id == Mandate.id,
                                            MandateApplication.application == application))
        .where(
            Provider.enterprise_id == provider_enterprise_id,
            Mandate.employer_id == employer_id,
            Mandate.status == MandateStatus.ACCEPTED,
            Mandate.effective_from <= day,
            or_(Mandate.end_date.is_(None), Mandate.end_date >= day),
        )
    )


_MACHINE = _build_machine_query()


def machine_mandate_path(session: Session, provider_enterprise_id: int, employer_id: int, application: str,
                         day: date, *, kbo: str, application_name: str) -> MandatePathResult:
    """A provider's own system (an API client of the provider) acting for a client employer: the
    relationship and the scope; there is no staff member to assign."""
    rows = session.execute(_MACHINE, {"provider_enterprise_id": provider_enterprise_id, "employer_id": employer_id,
                                      "application": application, "day": day}).all()
    if not rows:
        own = session.get(Enterprise, provider_enterprise_id)
        provider = f"{own.name} ({own.kbo_display})" if own is not None else "?"
        return _refuse("no-mandate", f"{provider} has no mandate of {kbo} in force on {day.isoformat()}",
                       provider_enterprise_id, provider=provider, kbo=kbo, day=day.isoformat())
    in_scope = [row for row in rows if row[4] is not None]
    kind, effective_from, provider_kbo, provider_name, group = (in_scope or rows)[0]
    provider = f"{provider_name} ({format_kbo(provider_kbo)})"
    if not in_scope:
        return _refuse("outside-mandate", f"{application_name} is not within the mandate {kbo} gave {provider}",
                       provider_enterprise_id, provider=provider, kbo=kbo, application=application)
    since = effective_from.isoformat() if isinstance(effective_from, date) else str(effective_from)[:10]
    code = "mandate-affiliation" if MandateKind(getattr(kind, "value", kind)) is MandateKind.AFFILIATION \
        else "mandate-form"
    text = (f"{provider} is the erkend sociaal secretariaat of {kbo} since {since}" if code == "mandate-affiliation"
            else f"{provider} is the service provider of {kbo} by form since {since}")
    path = (Step(code, text, {"provider": provider, "kbo": kbo, "since": since}),
            Step("mandate-scope", f"{application_name} within the mandate (group {group})",
                 {"application": application, "group": group}))
    return MandatePathResult(True, Step("allowed", "allowed"), path, provider_enterprise_id)
