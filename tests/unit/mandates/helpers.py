"""Helpers of the mandate tests: `Unchanged` (a refusal wrote nothing at all) and `Kit`, which builds
employers, providers, staff and mandates through the real operations (rules checked, audit written)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from access.decision import Decision, decide
from access.models import Enterprise, OutboxMessage, Person, Role
from audit.models import AuditRecord
from audit.operations import RequestContext
from db import Base, import_all_models
from mandates import operations as mops
from mandates.models import Mandate, MandateApplication, ProviderKind, Provider, StaffAssignment
from tests.factories import Member, make_local_admin, make_member, subject_of

import_all_models()

# The clock fixture stands on Monday 2026-11-02: the current quarter started on 2026-10-01.
Q3_2026 = date(2026, 7, 1)
Q4_2026 = date(2026, 10, 1)
Q1_2027 = date(2027, 1, 1)
Q2_2027 = date(2027, 4, 1)
TODAY = date(2026, 11, 2)
CONTRACT_DATE = date(2026, 10, 15)


# --- nothing written ---------------------------------------------------------------------


def snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of every table of the models (the business tables, the mandates and the audit trail)."""
    session.flush()  # a Core select does not autoflush: pending changes must show
    result = {}
    for table in Base.metadata.sorted_tables:
        rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
        result[table.name] = [tuple(row) for row in rows]
    return result


def counts(session: Session) -> dict[str, int]:
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Provider, Mandate, MandateApplication, StaffAssignment, AuditRecord, OutboxMessage)}


class Unchanged:
    """`with Unchanged(session): <refused call>`: no row of any table was added, changed or removed,
    in particular no mandate, scope row, staff assignment, audit record or outbox message."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> "Unchanged":
        self.counts = counts(self.session)
        self.before = snapshot(self.session)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        after_counts = counts(self.session)
        assert after_counts == self.counts, f"rows written by a refusal: {self.counts} -> {after_counts}"
        after = snapshot(self.session)
        changed = [name for name in self.before if self.before[name] != after[name]]
        assert not changed, f"tables changed by a refusal: {changed}"


# --- building worlds through the operations -------------------------------------------------


@dataclass
class Party:
    enterprise: Enterprise
    admin: Member | None
    provider: Provider | None = None

    @property
    def ctx(self) -> RequestContext:
        return self.admin.ctx


class Kit:
    """Employers, providers, staff and mandates made through the operations (rules checked, audit written)."""

    def __init__(self, factories, ctx: RequestContext, groups, catalogue) -> None:
        self.f, self.session, self.ctx, self.groups, self.catalogue = factories, factories.session, ctx, groups, catalogue
        self._numbers = iter(range(100, 10_000))

    def employer(self, *, admin: bool = True, **fields) -> Party:
        enterprise = self.f.Employer(**fields)
        return Party(enterprise, make_local_admin(self.session, enterprise, self.ctx) if admin else None)

    def provider(self, kind: ProviderKind = ProviderKind.ACCOUNTANT, *, admin: bool = True, employer: bool = False,
                 **fields) -> Party:
        enterprise = self.f.Enterprise(employer=employer, **fields)
        number = f"300/{next(self._numbers)}" if kind is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT else None
        provider = mops.register_provider(self.session, enterprise, kind, number, by=self.ctx)
        return Party(enterprise, make_local_admin(self.session, enterprise, self.ctx) if admin else None, provider)

    def secretariat(self, **kwargs) -> Party:
        return self.provider(ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT, employer=True, **kwargs)

    def staff(self, provider: Party, role: Role = Role.USER, **kwargs) -> Person:
        """A staff member designated by the provider's local administrator (direct-authority link first)."""
        return make_member(self.session, provider.enterprise, role, by=provider.ctx, **kwargs).person

    def affiliate(self, employer: Party, secretariat: Party, start: date = Q4_2026, **kwargs) -> Mandate:
        return mops.record_affiliation(self.session, employer.enterprise, secretariat.provider, start,
                                       groups=self.groups, by=kwargs.pop("by", self.ctx), **kwargs).affiliation

    def form_kwargs(self, **overrides) -> dict:
        return dict(dict(contract_declared=True, contract_date=CONTRACT_DATE, contract_reference="CT-2026-17",
                         groups=self.groups), **overrides)

    def file(self, employer: Party, provider: Party, start: date = Q1_2027, group_codes=("asr",), **overrides):
        by = overrides.pop("by", employer.ctx if employer.admin else self.ctx)
        return mops.file_provider_form(self.session, employer.enterprise, provider.provider, start,
                                       list(group_codes), by=by, **self.form_kwargs(**overrides))

    def decide_form(self, mandate: Mandate, provider: Party, accept: bool = True) -> Mandate:
        return mops.decide_provider_form(self.session, mandate, provider.enterprise, accept, by=provider.ctx)

    def accepted_form(self, employer: Party, provider: Party, start: date = Q1_2027, group_codes=("asr",)):
        return self.decide_form(self.file(employer, provider, start, group_codes), provider)

    def assign(self, provider: Party, mandate: Mandate, person: Person, application: str = "dmfa"):
        return mops.assign_staff(self.session, provider.enterprise, mandate, person, application,
                                 catalogue=self.catalogue, by=provider.ctx)

    def decide(self, person: Person, employer: Party, application: str = "dmfa", day: date | None = None,
               action: str = "use") -> Decision:
        return decide(self.session, subject_of(person), employer.enterprise.id, application, action,
                      catalogue=self.catalogue, day=day)

    def outbox(self, person: Person, kind: str | None = None) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.recipient_person_id == person.id).order_by(OutboxMessage.id)
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        return list(self.session.scalars(stmt))

    def audit(self, action: str) -> list[AuditRecord]:
        return list(self.session.scalars(select(AuditRecord).where(AuditRecord.action == action)
                                         .order_by(AuditRecord.id)))

