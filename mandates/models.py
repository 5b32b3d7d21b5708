"""Service providers, mandates (affiliations and provider forms), their scope, and staff assignments."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from access.models import Enterprise, Person
from db import Base, string_enum


class ProviderKind(enum.Enum):
    """Seed 001: "uw sociaal secretariaat ... uw boekhouder of andere tussenpersonen"."""

    ERKEND_SOCIAAL_SECRETARIAAT = "erkend_sociaal_secretariaat"
    ACCOUNTANT = "accountant"
    SOFTWARE_BUREAU = "software_bureau"
    OTHER_INTERMEDIARY = "other_intermediary"


class Provider(Base):
    """A service provider (dienstverlener, processor). It is itself an enterprise, with its own
    local administrator and staff (memberships and links of that enterprise)."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), unique=True)
    kind: Mapped[ProviderKind] = mapped_column(string_enum(ProviderKind, "provider_kind"))
    recognition_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    enterprise: Mapped[Enterprise] = relationship()

    __table_args__ = (
        # An erkend sociaal secretariaat has a recognition number; other providers have none.
        CheckConstraint("(kind = 'erkend_sociaal_secretariaat') = (recognition_number IS NOT NULL)",
                        name="recognition_number_iff_secretariat"),
    )

    @property
    def is_secretariat(self) -> bool:
        return self.kind is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT


class MandateKind(enum.Enum):
    AFFILIATION = "affiliation"  # with an erkend sociaal secretariaat: automatic, recorded by an officer
    FORM = "form"                # the provider form, filed by the employer and accepted by the provider


class MandateStatus(enum.Enum):
    PENDING = "pending"      # filed, waiting for the provider's local administrator
    ACCEPTED = "accepted"    # in force from effective_from to end_date (an affiliation is always accepted)
    DECLINED = "declined"    # the provider declined the form
    WITHDRAWN = "withdrawn"  # the employer withdrew the form before the provider decided
    REVOKED = "revoked"      # a portal officer revoked it: no access from that moment


# Statuses that hold the employer's one "other provider" place.
OPEN_FORM_STATUSES = (MandateStatus.PENDING, MandateStatus.ACCEPTED)


class Mandate(Base):
    """A provider's relationship with an employer over a period (end date inclusive, open when null).

    The decision point reads it at request time: access needs status accepted and
    effective_from <= day <= end_date, so ending or revoking cuts access at once."""

    __tablename__ = "mandates"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MandateKind] = mapped_column(string_enum(MandateKind, "mandate_kind"))
    employer_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    status: Mapped[MandateStatus] = mapped_column(string_enum(MandateStatus, "mandate_status"))
    start_date: Mapped[date] = mapped_column(Date)  # always the first day of a quarter
    end_date: Mapped[date | None] = mapped_column(Date)
    # Access starts at the later of the provider's acceptance and the start date.
    effective_from: Mapped[date | None] = mapped_column(Date)

    # The provider form: the declaration that a written contract with the mentions of
    # article 16 of the law of 8 December 1992 / GDPR article 28 exists.
    contract_declared: Mapped[bool] = mapped_column(Boolean, default=False)
    contract_date: Mapped[date | None] = mapped_column(Date)
    contract_reference: Mapped[str | None] = mapped_column(String(100))

    # The affiliation: the secretariat's file number and the contract terms that the switch rules read.
    affiliation_number: Mapped[str | None] = mapped_column(String(40))
    minimum_term_months: Mapped[int | None] = mapped_column(Integer)
    notice_months: Mapped[int | None] = mapped_column(Integer)
    # When the employer gave notice to end this affiliation (recorded at the switch).
    notice_date: Mapped[date | None] = mapped_column(Date)

    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    employer: Mapped[Enterprise] = relationship(foreign_keys=[employer_id])
    provider: Mapped[Provider] = relationship()
    filed_by: Mapped[Person | None] = relationship(foreign_keys=[filed_by_id])
    decided_by: Mapped[Person | None] = relationship(foreign_keys=[decided_by_id])
    ended_by: Mapped[Person | None] = relationship(foreign_keys=[ended_by_id])
    scope: Mapped[list["MandateApplication"]] = relationship(
        back_populates="mandate", order_by="MandateApplication.id", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_not_before_start"),
        CheckConstraint("status = 'accepted' OR kind = 'form'", name="affiliation_always_accepted"),
        CheckConstraint("status <> 'accepted' OR effective_from IS NOT NULL", name="accepted_has_effective_from"),
        CheckConstraint(
            "kind = 'affiliation' OR (contract_declared AND contract_date IS NOT NULL "
            "AND contract_reference IS NOT NULL)",
            name="form_declares_contract",
        ),
        # Seed 001: next to the erkend sociaal secretariaat, at most ONE other provider. The
        # database holds the place: one open (no end date) pending or accepted form per employer,
        # whatever number of requests race for it. A form with an end date frees the place from
        # that date; overlap with it is checked under the employer's row lock.
        Index(
            "uq_mandates_one_extra_provider",
            "employer_id",
            unique=True,
            postgresql_where=text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"),
            sqlite_where=text("kind = 'form' AND status IN ('pending', 'accepted') AND end_date IS NULL"),
        ),
        # One open affiliation with an erkend sociaal secretariaat per employer.
        Index(
            "uq_mandates_one_open_affiliation",
            "employer_id",
            unique=True,
            postgresql_where=text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"),
            sqlite_where=text("kind = 'affiliation' AND status = 'accepted' AND end_date IS NULL"),
        ),
        Index("ix_mandates_employer", "employer_id", "status"),
        Index("ix_mandates_provider", "provider_id", "status"),
    )

    def active_on(self, day: date) -> bool:
        return (self.status is MandateStatus.ACCEPTED and self.effective_from is not None
                and self.effective_from <= day and (self.end_date is None or self.end_date >= day))

    def applications(self) -> list[str]:
        return [item.application for item in self.scope]


class MandateApplication(Base):
    """One application within a mandate's scope, with the group it was entrusted under.
    Frozen at filing: a later change of config/mandate_groups.toml does not widen a signed mandate."""

    __tablename__ = "mandate_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id"))
    application_group: Mapped[str] = mapped_column(String(40))
    application: Mapped[str] = mapped_column(String(40))

    mandate: Mapped[Mandate] = relationship(back_populates="scope")

    __table_args__ = (UniqueConstraint("mandate_id", "application"),)


class StaffAssignment(Base):
    """The provider's decision that one of its staff may work for one client on one application.

    Bound to the mandate, not to the (provider, employer) pair: when the mandate ends and a new
    one is filed later, the old assignments do not come back to life."""

    __tablename__ = "staff_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    application: Mapped[str] = mapped_column(String(40))
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    mandate: Mapped[Mandate] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    assigned_by: Mapped[Person | None] = relationship(foreign_keys=[assigned_by_id])

    __table_args__ = (
        Index(
            "uq_staff_assignments_current",
            "mandate_id",
            "person_id",
            "application",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
        Index("ix_staff_assignments_person", "person_id", "mandate_id"),
    )
