"""An access review campaign of one enterprise and its items (one per right or mandate scope listed at
the start)."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (JSON, Boolean, CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from access.models import Enterprise, Person
from db import Base, string_enum


class ReviewStatus(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class ItemKind(enum.Enum):
    RIGHT = "right"                  # a user's right on one application (access.models.Right)
    MANDATE_SCOPE = "mandate_scope"  # one application within a provider's mandate (MandateApplication)


class ItemDecision(enum.Enum):
    CONFIRM = "confirm"
    REVOKE = "revoke"


class ItemOutcome(enum.Enum):
    CONFIRMED = "confirmed"
    REVOKED = "revoked"                          # by the reviewer, at once
    REVOKED_AT_DEADLINE = "revoked_at_deadline"  # unanswered, and the campaign revokes unanswered items
    FLAGGED = "flagged"                          # unanswered, left as it was
    GONE = "gone"                                # the right or scope had already ended when decided or closed


class AccessReview(Base):
    """One campaign. At most one open campaign per enterprise (a partial unique index). `deadline` is the
    last day to answer, a Belgian calendar date; the report is written once, when it closes."""

    __tablename__ = "access_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    started_by_label: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[date] = mapped_column(Date)
    revoke_unanswered: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[ReviewStatus] = mapped_column(string_enum(ReviewStatus, "access_review_status"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict | None] = mapped_column(JSON)

    enterprise: Mapped[Enterprise] = relationship()
    started_by: Mapped[Person | None] = relationship()
    items: Mapped[list["ReviewItem"]] = relationship(back_populates="review", order_by="ReviewItem.id")

    __table_args__ = (
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_iff_closed_at"),
        CheckConstraint("status = 'open' OR report IS NOT NULL", name="closed_has_report"),
        Index("uq_access_reviews_one_open", "enterprise_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
        Index("ix_access_reviews_enterprise", "enterprise_id", "started_at"),
        Index("ix_access_reviews_due", "deadline", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
    )

    @property
    def is_open(self) -> bool:
        return self.status is ReviewStatus.OPEN


class ReviewItem(Base):
    """One right or mandate scope as it stood when the campaign started, and what became of it.

    `target_id` is the Right's or the MandateApplication's id, without a foreign key: a scope row is
    deleted when the application leaves the mandate, and the item must outlive it. `snapshot` keeps
    the names (person, provider, application) so that the report stays readable."""

    __tablename__ = "access_review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("access_reviews.id"))
    kind: Mapped[ItemKind] = mapped_column(string_enum(ItemKind, "access_review_item_kind"))
    target_id: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))   # a right's holder
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandates.id"))  # a scope's mandate
    application: Mapped[str] = mapped_column(String(40))
    snapshot: Mapped[dict] = mapped_column(JSON)
    decision: Mapped[ItemDecision | None] = mapped_column(string_enum(ItemDecision, "access_review_decision"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[ItemOutcome | None] = mapped_column(string_enum(ItemOutcome, "access_review_outcome"))

    review: Mapped[AccessReview] = relationship(back_populates="items")
    decided_by: Mapped[Person | None] = relationship(foreign_keys=[decided_by_id])

    __table_args__ = (
        UniqueConstraint("review_id", "kind", "target_id", name="uq_access_review_items_target"),
        CheckConstraint("kind <> 'right' OR (person_id IS NOT NULL AND mandate_id IS NULL)", name="right_has_person"),
        CheckConstraint("kind <> 'mandate_scope' OR (mandate_id IS NOT NULL AND person_id IS NULL)",
                        name="scope_has_mandate"),
        CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name="decided_iff_decided_at"),
        CheckConstraint("decision IS NULL OR flagged_at IS NULL", name="flagged_only_unanswered"),
        CheckConstraint("outcome IS NULL OR outcome <> 'revoked_at_deadline' OR revoked_at IS NOT NULL",
                        name="revoked_at_deadline_has_revoked_at"),
    )

    @property
    def answered(self) -> bool:
        return self.decision is not None
