"""Searching the repertory, the secured view's facts, change proposals and direct changes."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from access.clock import utcnow
from access.errors import Conflict, Forbidden, NotFound, ValidationError
from access.validators import fold_for_search
from access.models import Enterprise, Link, Membership, Person, Right, Role
from access.operations import ENTERPRISE_FIELDS, clean_enterprise_fields, enterprise_snapshot
from audit.operations import RequestContext, record
from certificates.models import Certificate
from certificates.proof import record_use
from repertory.models import ChangeProposal, ProposalStatus, RecordChange

SEARCH_LIMIT = 50
_DIGITS = re.compile(r"\D")


def search_employers(session: Session, query: str) -> list[Enterprise]:
    """Public search by KBO number, RSZ number or (part of the) name; employers only."""
    query = (query or "").strip()
    if len(query) < 2:
        raise ValidationError("Type at least 2 characters: a name, a KBO number or an RSZ number.", "q")
    if len(query) > 100:
        raise ValidationError("The search text may have at most 100 characters.", "q")
    digits = _DIGITS.sub("", query)
    conditions = [Enterprise.name_folded.contains(fold_for_search(query), autoescape=True)]
    if len(digits) >= 4 and len(digits) >= len(query.replace(" ", "")) - 3:
        conditions += [Enterprise.kbo_number.startswith(digits.zfill(10) if len(digits) == 9 else digits),
                       Enterprise.rsz_number.startswith(digits)]
    return list(session.scalars(
        select(Enterprise).where(Enterprise.rsz_number.is_not(None), or_(*conditions))
        .order_by(Enterprise.name).limit(SEARCH_LIMIT)))


@dataclass(frozen=True)
class SecuredFacts:
    local_admin: Person | None
    users: int
    rights: int
    links: list[Link]
    history: list[RecordChange]
    proposals: list[ChangeProposal]


def secured_facts(session: Session, enterprise: Enterprise) -> SecuredFacts:
    admin = session.scalar(select(Membership).where(
        Membership.enterprise_id == enterprise.id, Membership.role == Role.LOCAL_ADMIN, Membership.ended_at.is_(None)))
    users = session.scalar(select(func.count()).select_from(Membership).where(
        Membership.enterprise_id == enterprise.id, Membership.ended_at.is_(None)))
    rights = session.scalar(select(func.count()).select_from(Right).where(
        Right.enterprise_id == enterprise.id, Right.revoked_at.is_(None)))
    links = list(session.scalars(select(Link).where(Link.enterprise_id == enterprise.id)
                                 .order_by(Link.start_date, Link.id)))
    history = list(session.scalars(select(RecordChange).where(RecordChange.enterprise_id == enterprise.id)
                                   .order_by(RecordChange.changed_at.desc(), RecordChange.id.desc())))
    proposals = list(session.scalars(select(ChangeProposal).where(ChangeProposal.enterprise_id == enterprise.id)
                                     .order_by(ChangeProposal.proposed_at.desc(), ChangeProposal.id.desc())))
    return SecuredFacts(admin.person if admin else None, users or 0, rights or 0, links, history, proposals)


def propose_change(session: Session, enterprise: Enterprise, values: dict[str, str | None],
                   motivation: str | None, *, by: RequestContext) -> ChangeProposal:
    """A user with the right proposes new values for the record (the decision point checked the right)."""
    if by.actor_person_id is None:
        # An API client (no person) changes the record by directe wijziging, not by proposal.
        raise Forbidden("A change proposal is made by a person; an API client uses directe wijziging.")
    changes = _changes_to(enterprise, values)
    if not changes:
        raise ValidationError("The proposal changes nothing: fill in at least one new value.", "name")
    motivation = (motivation or "").strip() or None
    if motivation and len(motivation) > 2000:
        raise ValidationError("The motivation may have at most 2000 characters.", "motivation")
    proposal = ChangeProposal(enterprise_id=enterprise.id, proposed_by_id=by.actor_person_id, proposed_at=utcnow(),
                              changes=changes, motivation=motivation, status=ProposalStatus.PENDING)
    session.add(proposal)
    session.flush()
    record(session, by, action="proposal.submit", outcome="success", enterprise_id=enterprise.id,
           application="wijzigingsvoorstellen", details={"proposal_id": proposal.id, "changes": changes})
    return proposal


def _changes_to(enterprise: Enterprise, values: dict[str, str | None]) -> dict[str, dict[str, str | None]]:
    """The fields whose value changes: a missing or empty value keeps the current one."""
    merged = {name: values.get(name) if values.get(name) not in (None, "") else getattr(enterprise, name)
              for name in ENTERPRISE_FIELDS}
    cleaned = clean_enterprise_fields(merged, employer=enterprise.is_employer)
    return {name: {"before": getattr(enterprise, name), "after": cleaned[name]}
            for name in ENTERPRISE_FIELDS if cleaned[name] != getattr(enterprise, name)}


def check_direct_change(enterprise: Enterprise, values: dict[str, str | None]) -> dict[str, dict[str, str | None]]:
    """What a direct change would change (raises ValidationError for a value the record cannot take,
    or when it changes nothing). Writes nothing: the file channel checks a whole batch first."""
    changes = _changes_to(enterprise, values)
    if not changes:
        raise ValidationError("The change changes nothing: give at least one new value.", "name")
    return changes


def apply_direct_change(session: Session, enterprise: Enterprise, values: dict[str, str | None], *,
                        certificate: Certificate, by: RequestContext, source: str = "direct_change",
                        reference: str | None = None) -> RecordChange:
    """A directe wijziging: applied at once, without officer review. The decision point allowed it
    (certificate tier: the right or mandate, and proof of possession of `certificate`'s key); the
    history records that certificate. `source` is "file_message" for a change from a signed file,
    whose `reference` the audit record keeps. A change with the API's proof (a certificate-bound token)
    is also audited as a use of the certificate (certificate.use, purpose "direct-change")."""
    if certificate.enterprise_id not in (enterprise.id, by.provider_enterprise_id) \
            or not certificate.usable_on(utcnow()):
        # The decision point checked this; an operation called without it must not slip through.
        raise Conflict("The certificate that proved this change is not an active certificate of the "
                       "enterprise or of its provider.", "certificate")
    changes = check_direct_change(enterprise, values)
    for name, change in changes.items():
        setattr(enterprise, name, change["after"])
    change = RecordChange(enterprise_id=enterprise.id, changed_at=utcnow(), changed_by_id=by.actor_person_id,
                          source=source, certificate_id=certificate.id, changes=changes)
    session.add(change)
    session.flush()
    record(session, by, action="repertory.direct_change", outcome="success", enterprise_id=enterprise.id,
           application="directe_wijziging",
           details={"record_change_id": change.id, "changes": changes, "certificate_id": certificate.id,
                    "fingerprint": certificate.fingerprint, "source": source, "reference": reference})
    if source == "direct_change":
        # A change from a signed file is the file's use of the certificate (filechannel.operations
        # audits it once per message, with the same reference); this one is the request's own.
        record_use(session, by, certificate, "direct-change", enterprise_id=enterprise.id,
                   application="directe_wijziging", record_change_id=change.id)
    return change


def get_proposal(session: Session, proposal_id: int) -> ChangeProposal:
    proposal = session.get(ChangeProposal, proposal_id)
    if proposal is None:
        raise NotFound("Unknown change proposal.", "proposal")
    return proposal


def pending_proposals(session: Session) -> list[ChangeProposal]:
    return list(session.scalars(select(ChangeProposal).where(ChangeProposal.status == ProposalStatus.PENDING)
                                .order_by(ChangeProposal.proposed_at, ChangeProposal.id)))


def decide_proposal(session: Session, proposal: ChangeProposal, accept: bool, note: str | None, *,
                    by: RequestContext) -> ChangeProposal:
    """A portal officer accepts (the record changes) or rejects (with a note) a pending proposal."""
    if proposal.status is not ProposalStatus.PENDING:
        raise Conflict("This proposal was already %(status)s.", "proposal", status=proposal.status.value)
    note = (note or "").strip() or None
    if not accept and not note:
        raise ValidationError("Say why the proposal is rejected.", "note")
    if note and len(note) > 2000:
        raise ValidationError("The note may have at most 2000 characters.", "note")
    enterprise = proposal.enterprise
    stale = [name for name, change in proposal.changes.items() if getattr(enterprise, name) != change["before"]]
    if accept and stale:
        raise Conflict("The record changed since this proposal was made (%(fields)s); reject it and "
                       "ask for a new one.", "proposal", fields=', '.join(stale))
    proposal.status = ProposalStatus.ACCEPTED if accept else ProposalStatus.REJECTED
    proposal.decided_by_id = by.actor_person_id
    proposal.decided_at = utcnow()
    proposal.decision_note = note
    if accept:
        for name, change in proposal.changes.items():
            setattr(enterprise, name, change["after"])
        session.add(RecordChange(enterprise_id=enterprise.id, changed_at=utcnow(), changed_by_id=by.actor_person_id,
                                 source="proposal", proposal_id=proposal.id, changes=proposal.changes))
    session.flush()
    record(session, by, action=f"proposal.{proposal.status.value}", outcome="success", enterprise_id=enterprise.id,
           application="wijzigingsvoorstellen",
           details={"proposal_id": proposal.id, "changes": proposal.changes, "note": note})
    return proposal
