from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from access.models import Enterprise, Person
from db import Base, string_enum

if TYPE_CHECKING:
    from certificates.models import Certificate


class ProposalStatus(enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ChangeProposal(Base):
    """A wijzigingsvoorstel: a user proposes, a portal officer accepts or rejects."""

    __tablename__ = "change_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changes: Mapped[dict] = mapped_column(JSON)  # field -> {"before": ..., "after": ...}
    motivation: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ProposalStatus] = mapped_column(string_enum(ProposalStatus, "proposal_status", length=16))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)

    enterprise: Mapped[Enterprise] = relationship()
    proposed_by: Mapped[Person] = relationship(foreign_keys=[proposed_by_id])
    decided_by: Mapped[Person | None] = relationship(foreign_keys=[decided_by_id])

    __table_args__ = (Index("ix_change_proposals_enterprise", "enterprise_id", "proposed_at"),
                      Index("ix_change_proposals_status", "status"))


class RecordChange(Base):
    """The history of an employer's record: registration and every accepted change."""

    __tablename__ = "record_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    source: Mapped[str] = mapped_column(String(40))  # registration, proposal, direct_change, file_message
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("change_proposals.id"))
    # A directe wijziging: the qualified certificate whose key proved it (API token or signed file).
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    changes: Mapped[dict] = mapped_column(JSON)

    changed_by: Mapped[Person | None] = relationship()
    certificate: Mapped["Certificate | None"] = relationship()

    __table_args__ = (Index("ix_record_changes_enterprise", "enterprise_id", "changed_at"),)
