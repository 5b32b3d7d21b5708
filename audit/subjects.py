"""The data subject view: which accounts and providers consulted or changed data about a person.

Seed 001: the enterprise must inform the persons the data is about and let them inspect it. A record
says whom it is about in its details, under "subject_person_ids" (audit.operations.record's
`subject_person_ids`): inside the record, so the hash chain covers it. audit_records gets no column
for it (the chain's canonical encoding covers exactly its current columns). For the query, a mapper
event mirrors that list into audit_record_subjects (record_id, person_id) in the same flush, so the
index can never say more or less than the chained details; the table is append-only like the
records (migration 0011) and only the retention purge removes rows, with their records.

Listed for a person: every record about him whose actor is someone else (his own acts on himself,
such as choosing his password, are not "who consulted my data"), newest first, with the actor's
name (never an internal id), the provider his employer's data was handled through, the enterprise
acted for, what and when.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import event, insert, or_, select
from sqlalchemy.orm import Session, aliased

from access.clock import as_utc
from access.models import Enterprise, Person
from audit.models import AuditRecord, RecordSubject

# The portal's function in the catalogue (config/applications.toml) and access/decision.py's rule.
DATA_SUBJECT_ACCESS = "inzage"
SUBJECTS_KEY = "subject_person_ids"
CONSULTATION = "person.view"
PAGE_SIZE = 50

_subjects = RecordSubject.__table__


@event.listens_for(AuditRecord, "after_insert")
def _index_subjects(mapper, connection, target: AuditRecord) -> None:  # noqa: ARG001
    person_ids = (target.details or {}).get(SUBJECTS_KEY) if isinstance(target.details, dict) else None
    if person_ids:
        connection.execute(insert(_subjects), [{"record_id": target.id, "person_id": person_id}
                                               for person_id in person_ids])


def record_consultation(session: Session, ctx, *, person_ids: Iterable[int], enterprise_id: int | None,
                        what: str) -> AuditRecord | None:
    """A page showed these persons' personal data (e.g. their INSZ) to someone else: say so."""
    from audit.operations import record

    people = sorted(set(person_ids) - {ctx.actor_person_id})
    if not people:
        return None
    return record(session, ctx, action=CONSULTATION, outcome="success", enterprise_id=enterprise_id,
                  details={"what": what, "persons": len(people)}, subject_person_ids=people)


@dataclass(frozen=True)
class SubjectRow:
    id: int
    occurred_at: datetime
    action: str
    outcome: str
    application: str | None
    actor_name: str | None  # the acting person's name; None for the portal itself (CLI, a job)
    actor_label: str | None
    enterprise_name: str | None
    enterprise_kbo: str | None
    provider_name: str | None
    provider_kbo: str | None

    def as_json(self) -> dict[str, Any]:
        return {"occurred_at": self.occurred_at, "action": self.action, "outcome": self.outcome,
                "application": self.application,
                "actor": self.actor_name or self.actor_label,
                "enterprise": {"name": self.enterprise_name, "kbo": self.enterprise_kbo}
                if self.enterprise_name else None,
                "provider": {"name": self.provider_name, "kbo": self.provider_kbo} if self.provider_name else None}


@dataclass(frozen=True)
class SubjectPage:
    rows: list[SubjectRow]
    page: int
    has_next: bool


def records_about(session: Session, person_id: int, *, page: int = 1, per_page: int = PAGE_SIZE) -> SubjectPage:
    """The records about this person acted by someone else, newest first (page 1 is the newest)."""
    actor = aliased(Person)
    enterprise = aliased(Enterprise)
    provider = aliased(Enterprise)
    records = AuditRecord
    query = (
        select(records.id, records.occurred_at, records.action, records.outcome, records.application,
               actor.first_name, actor.last_name, records.actor_label, enterprise.name, enterprise.kbo_number,
               provider.name, provider.kbo_number)
        .join(RecordSubject, RecordSubject.record_id == records.id)
        .outerjoin(actor, actor.id == records.actor_person_id)
        .outerjoin(enterprise, enterprise.id == records.enterprise_id)
        .outerjoin(provider, provider.id == records.provider_enterprise_id)
        .where(RecordSubject.person_id == person_id,
               or_(records.actor_person_id.is_(None), records.actor_person_id != person_id))
        .order_by(records.occurred_at.desc(), records.id.desc())
        .limit(per_page + 1).offset((page - 1) * per_page))
    rows = session.execute(query).all()
    return SubjectPage([_row(row) for row in rows[:per_page]], page, len(rows) > per_page)


def _row(row) -> SubjectRow:
    from access.validators import format_kbo

    (record_id, occurred_at, action, outcome, application, first, last, label, enterprise_name, enterprise_kbo,
     provider_name, provider_kbo) = row
    return SubjectRow(record_id, as_utc(occurred_at), action, outcome, application,
                      f"{first} {last}" if first is not None else None, None if first is not None else label,
                      enterprise_name, format_kbo(enterprise_kbo) if enterprise_kbo else None,
                      provider_name, format_kbo(provider_kbo) if provider_kbo else None)
