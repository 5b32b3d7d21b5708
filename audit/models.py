"""The audit trail: append-only records of logins, changes and access decisions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db import Base


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Who did it: the person (if known) and the login name he used or tried.
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    actor_label: Mapped[str | None] = mapped_column(String(120))
    # For whom: the enterprise whose data or access management was touched.
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    # Through whom: the service provider whose staff member acted for that enterprise under mandate.
    provider_enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    application: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20))  # allowed, denied, success, failure, error
    reason: Mapped[str | None] = mapped_column(Text)
    path: Mapped[list | None] = mapped_column(JSON)
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_records_occurred_at", "occurred_at"),
        Index("ix_audit_records_enterprise_occurred", "enterprise_id", "occurred_at"),
        Index("ix_audit_records_actor_occurred", "actor_person_id", "occurred_at"),
        Index("ix_audit_records_provider_occurred", "provider_enterprise_id", "occurred_at"),
    )
