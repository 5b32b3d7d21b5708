"""Writing audit records. There is deliberately no function that updates or deletes one."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

from access.clock import utcnow
from audit import chain as _chain, sink as _sink  # noqa: F401 - their session events chain and ship every record
from audit import subjects as _subjects  # noqa: F401 - its mapper event indexes the records' data subjects
from audit.subjects import SUBJECTS_KEY
from audit.models import AuditRecord

# Writes registered under this key in session.info are replayed by the web
# layer after a rollback: a denied decision or a failed login (its audit record
# and the account's failure counter) must be kept even though the request that
# caused it is otherwise undone.
SURVIVORS_KEY = "survive_rollback"


@dataclass(frozen=True)
class RequestContext:
    """Where an action came from: filled by the web layer, the CLI or a test."""

    actor_person_id: int | None = None
    actor_label: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    # Set while a provider's staff member acts for a client employer under mandate.
    provider_enterprise_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_actor(self, person_id: int | None, label: str | None) -> "RequestContext":
        return replace(self, actor_person_id=person_id, actor_label=label)


CLI_CONTEXT = RequestContext(actor_label="cli", ip=None, user_agent="flask-cli")


def record(
    session: Session,
    ctx: RequestContext,
    *,
    action: str,
    outcome: str,
    enterprise_id: int | None = None,
    application: str | None = None,
    reason: str | None = None,
    path: Iterable[str] | None = None,
    details: dict[str, Any] | None = None,
    survive_rollback: bool = False,
    provider_enterprise_id: int | None = None,
    subject_person_ids: Iterable[int | None] | None = None,
) -> AuditRecord:
    """Append an audit record to the session (flushed and chained with the caller's transaction).
    `subject_person_ids`: the persons whose data the act consulted or changed; kept in the details
    (so the chain covers them) and indexed for the data subject view (audit/subjects.py)."""
    subjects = sorted({int(person_id) for person_id in subject_person_ids or () if person_id is not None})
    if subjects:
        details = {**(details or {}), SUBJECTS_KEY: subjects}
    entry = AuditRecord(
        occurred_at=utcnow(),
        actor_person_id=ctx.actor_person_id,
        actor_label=_clip(ctx.actor_label, 120),
        enterprise_id=enterprise_id,
        provider_enterprise_id=provider_enterprise_id or ctx.provider_enterprise_id,
        application=_clip(application, 40),  # may come from a URL: the audit write must never fail
        action=action,
        outcome=outcome,
        reason=reason,
        path=list(path) if path is not None else None,
        details=details,
        ip=_clip(ctx.ip, 45),
        user_agent=_clip(ctx.user_agent, 300),
        request_id=_clip(ctx.request_id, 64),
    )
    session.add(entry)
    if survive_rollback:
        values = {column.key: getattr(entry, column.key)
                  for column in AuditRecord.__table__.columns if column.key != "id"}
        survive(session, lambda s: s.add(AuditRecord(**values)))
    return entry


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else value


def survive(session: Session, replay) -> None:
    """Register `replay(session)` to be run again if this transaction is rolled back."""
    session.info.setdefault(SURVIVORS_KEY, []).append(replay)


def replay_survivors(session: Session, survivors: list) -> None:
    """After a rollback, apply again the writes that must outlive it."""
    for replay in survivors:
        replay(session)


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, flush_context, instances) -> None:  # noqa: ARG001
    # Append-only at the ORM level too; the database refuses with triggers.
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditRecord):
            raise PermissionError("audit records are append-only")
