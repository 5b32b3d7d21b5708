"""Read-only queries the views and the API share."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from access.clock import today
from access.validators import fold_for_search
from access.models import DIRECT_AUTHORITY_KINDS, Enterprise, Link, Membership, Person, Right, Role


def memberships_of(session: Session, person_id: int | None) -> list[Membership]:
    if person_id is None:
        return []
    return list(session.scalars(
        select(Membership).options(joinedload(Membership.enterprise))
        .where(Membership.person_id == person_id, Membership.ended_at.is_(None))
        .order_by(Membership.enterprise_id)))


def eligible_persons(session: Session, enterprise_id: int) -> list[Person]:
    """Persons under the enterprise's direct authority today: the only ones who may get a role."""
    day = today()
    return list(session.scalars(
        select(Person).join(Link, Link.person_id == Person.id).where(
            Link.enterprise_id == enterprise_id, Link.kind.in_(DIRECT_AUTHORITY_KINDS), Link.start_date <= day,
            or_(Link.end_date.is_(None), Link.end_date >= day),
        ).distinct().order_by(Person.last_name, Person.first_name)))


@dataclass(frozen=True)
class MatrixRow:
    person: Person
    role: Role
    rights: frozenset[str]
    under_authority: bool


def access_matrix(session: Session, enterprise: Enterprise) -> list[MatrixRow]:
    """Persons with a current role × their current rights."""
    members = list(session.scalars(
        select(Membership).options(joinedload(Membership.person))
        .where(Membership.enterprise_id == enterprise.id, Membership.ended_at.is_(None))))
    rights: dict[int, set[str]] = {}
    for person_id, application in session.execute(
            select(Right.person_id, Right.application).where(
                Right.enterprise_id == enterprise.id, Right.revoked_at.is_(None))):
        rights.setdefault(person_id, set()).add(application)
    eligible = {p.id for p in eligible_persons(session, enterprise.id)}
    order = {Role.LOCAL_ADMIN: 0, Role.CO_ADMIN: 1, Role.USER: 2}
    rows = [MatrixRow(m.person, m.role, frozenset(rights.get(m.person_id, ())), m.person_id in eligible)
            for m in members]
    return sorted(rows, key=lambda r: (order[r.role], r.person.last_name, r.person.first_name))


def links_of(session: Session, enterprise_id: int) -> list[Link]:
    return list(session.scalars(select(Link).options(joinedload(Link.person))
                                .where(Link.enterprise_id == enterprise_id).order_by(Link.start_date, Link.id)))


def search_enterprises(session: Session, query: str | None, limit: int = 100) -> list[Enterprise]:
    stmt = select(Enterprise).order_by(Enterprise.name).limit(limit)
    query = (query or "").strip()
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        conditions = [Enterprise.name_folded.contains(fold_for_search(query), autoescape=True)]
        if digits:
            conditions.append(Enterprise.kbo_number.contains(digits))
        stmt = stmt.where(or_(*conditions))
    return list(session.scalars(stmt))
