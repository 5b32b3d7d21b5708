"""Read-only views of mandates for pages and API: who acts for whom, on what, since when."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from access.clock import today, utcnow
from access.models import DIRECT_AUTHORITY_KINDS, Enterprise, Link, Membership, Person
from audit.models import AuditRecord
from mandates.models import Mandate, MandateApplication, MandateStatus, Provider, StaffAssignment


def _with_parties(stmt):
    return stmt.options(joinedload(Mandate.employer), joinedload(Mandate.provider).joinedload(Provider.enterprise),
                        selectinload(Mandate.scope))


def mandates_of_employer(session: Session, employer_id: int) -> list[Mandate]:
    return list(session.scalars(_with_parties(select(Mandate).where(Mandate.employer_id == employer_id)
                                              .order_by(Mandate.start_date.desc(), Mandate.id.desc()))))


def mandates_of_provider(session: Session, provider_enterprise_id: int) -> list[Mandate]:
    return list(session.scalars(_with_parties(
        select(Mandate).join(Provider, Provider.id == Mandate.provider_id)
        .where(Provider.enterprise_id == provider_enterprise_id)
        .order_by(Mandate.status, Mandate.start_date.desc(), Mandate.id.desc()))))


def all_mandates(session: Session, status: MandateStatus | None = None, limit: int = 500) -> list[Mandate]:
    stmt = select(Mandate).order_by(Mandate.filed_at.desc(), Mandate.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Mandate.status == status)
    return list(session.scalars(_with_parties(stmt)))


def providers(session: Session) -> list[Provider]:
    return list(session.scalars(select(Provider).options(joinedload(Provider.enterprise))
                                .join(Enterprise, Enterprise.id == Provider.enterprise_id).order_by(Enterprise.name)))


def current_assignments(session: Session, mandate_id: int) -> list[StaffAssignment]:
    return list(session.scalars(select(StaffAssignment).options(joinedload(StaffAssignment.person))
                                .where(StaffAssignment.mandate_id == mandate_id, StaffAssignment.revoked_at.is_(None))
                                .order_by(StaffAssignment.person_id, StaffAssignment.application)))


def current_assignments_by_mandate(session: Session, mandate_ids: list[int]) -> dict[int, list[StaffAssignment]]:
    """The current assignments of many mandates in one query (a provider's client list)."""
    result: dict[int, list[StaffAssignment]] = {}
    if not mandate_ids:
        return result
    for assignment in session.scalars(
            select(StaffAssignment).options(joinedload(StaffAssignment.person))
            .where(StaffAssignment.mandate_id.in_(mandate_ids), StaffAssignment.revoked_at.is_(None))
            .order_by(StaffAssignment.mandate_id, StaffAssignment.person_id, StaffAssignment.application)):
        result.setdefault(assignment.mandate_id, []).append(assignment)
    return result


@dataclass(frozen=True)
class Client:
    """An employer a staff member may act for, through which provider, on which applications."""

    mandate: Mandate
    employer: Enterprise
    provider_enterprise: Enterprise
    applications: tuple[str, ...]


def clients_of_staff(session: Session, person_id: int | None, day: date | None = None) -> list[Client]:
    """Employers whose mandate of the person's provider is in force today and for which the
    provider assigned him at least one application. Nobody else's clients: not even their names."""
    if person_id is None:
        return []
    day = day or today()
    rows = session.execute(
        select(Mandate, StaffAssignment.application)
        .join(StaffAssignment, StaffAssignment.mandate_id == Mandate.id)
        # Only applications within the mandate's scope, as the decision point's path requires.
        .join(MandateApplication, (MandateApplication.mandate_id == Mandate.id)
              & (MandateApplication.application == StaffAssignment.application))
        .join(Provider, Provider.id == Mandate.provider_id)
        .join(Membership, (Membership.enterprise_id == Provider.enterprise_id) & (Membership.person_id == person_id)
              & Membership.ended_at.is_(None))
        .where(
            StaffAssignment.person_id == person_id, StaffAssignment.revoked_at.is_(None),
            Mandate.status == MandateStatus.ACCEPTED, Mandate.effective_from <= day,
            or_(Mandate.end_date.is_(None), Mandate.end_date >= day),
            select(Link.id).where(
                # Correlated with the outer query's providers row (a scalar subquery here would not be:
                # nested in the EXISTS it would read the first provider of any mandate).
                Link.person_id == person_id, Link.enterprise_id == Provider.enterprise_id,
                Link.kind.in_(DIRECT_AUTHORITY_KINDS), Link.start_date <= day,
                or_(Link.end_date.is_(None), Link.end_date >= day)).exists(),
        )
        .options(joinedload(Mandate.employer), joinedload(Mandate.provider).joinedload(Provider.enterprise))
    ).all()
    by_mandate: dict[int, tuple[Mandate, list[str]]] = {}
    for mandate, application in rows:
        by_mandate.setdefault(mandate.id, (mandate, []))[1].append(application)
    clients = [Client(m, m.employer, m.provider.enterprise, tuple(sorted(apps))) for m, apps in by_mandate.values()]
    return sorted(clients, key=lambda c: (c.employer.name_folded, c.employer.kbo_number))


def is_provider_staff(session: Session, person_id: int | None) -> bool:
    if person_id is None:
        return False
    return session.scalar(select(Membership.id).join(Provider, Provider.enterprise_id == Membership.enterprise_id)
                          .where(Membership.person_id == person_id, Membership.ended_at.is_(None)).limit(1)) is not None


@dataclass(frozen=True)
class ProviderActivity:
    provider: Enterprise | None
    person_id: int | None
    person: str
    actions: int
    last_at: datetime


def recent_provider_activity(session: Session, employer_id: int, days: int = 90) -> list[ProviderActivity]:
    """Which of the providers' staff acted for this employer recently, from the audit trail."""
    since = utcnow() - timedelta(days=days)
    rows = session.execute(
        select(AuditRecord.provider_enterprise_id, AuditRecord.actor_person_id,
               func.max(AuditRecord.actor_label), func.count(), func.max(AuditRecord.occurred_at))
        .where(AuditRecord.enterprise_id == employer_id, AuditRecord.provider_enterprise_id.is_not(None),
               # The records of managing the mandate itself (filed, accepted, staff assigned, ended) name
               # the provider as the party concerned; they are not its staff acting for the employer.
               AuditRecord.action.not_like("mandate.%"),
               AuditRecord.occurred_at >= since)
        .group_by(AuditRecord.provider_enterprise_id, AuditRecord.actor_person_id)
        .order_by(func.max(AuditRecord.occurred_at).desc())
    ).all()
    result = []
    for provider_id, person_id, label, count, last_at in rows:
        person = session.get(Person, person_id) if person_id else None
        result.append(ProviderActivity(session.get(Enterprise, provider_id), person_id,
                                       person.full_name if person else (label or "?"), count, last_at))
    return result
