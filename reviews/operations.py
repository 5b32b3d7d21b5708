"""Access review campaigns: start, answer item by item, close at the deadline.

Like the other domain packages: each operation applies the rules, flushes and writes its audit record
(access_review.start, .decide, .close) in the same transaction; none commits. Who may start a review,
answer it and revoke what it lists is the decision point's answer, asked by the web layer (toegangsbeheer:
access_review, then manage_rights or manage_providers to revoke); the operations trust it.

A revocation goes through the existing operations (access.operations.revoke_right,
mandates.operations.remove_from_scope), so the audit trail shows the usual right.revoke or mandate record,
with the path "access review N" that led to it.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from access import operations as access_ops
from access.catalogue import CONFIG_DIR
from access.clock import today, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Enterprise, Person, Right
from audit.operations import RequestContext, record
from mandates import operations as mandate_ops
from mandates.models import Mandate, MandateApplication, MandateStatus, Provider
from reviews.models import AccessReview, ItemDecision, ItemKind, ItemOutcome, ReviewItem, ReviewStatus

SETTINGS_FILE = CONFIG_DIR / "access_reviews.toml"
MAX_NOTE = 1000


@dataclass(frozen=True)
class ReviewSettings:
    min_deadline_days: int = 1
    max_deadline_days: int = 90


@lru_cache(maxsize=4)
def load_settings(path: Path | str | None = None) -> ReviewSettings:
    with open(path or SETTINGS_FILE, "rb") as handle:
        data = tomllib.load(handle)
    settings = ReviewSettings(int(data["min_deadline_days"]), int(data["max_deadline_days"]))
    if not 1 <= settings.min_deadline_days <= settings.max_deadline_days:
        raise ValueError(f"{path or SETTINGS_FILE}: need 1 <= min_deadline_days <= max_deadline_days")
    return settings


# --- reading -------------------------------------------------------------------------------------


def reviews_of(session: Session, enterprise_id: int) -> list[AccessReview]:
    return list(session.scalars(select(AccessReview).where(AccessReview.enterprise_id == enterprise_id)
                                .order_by(AccessReview.started_at.desc(), AccessReview.id.desc())))


def open_review_of(session: Session, enterprise_id: int) -> AccessReview | None:
    return session.scalar(select(AccessReview).where(AccessReview.enterprise_id == enterprise_id,
                                                     AccessReview.status == ReviewStatus.OPEN))


def get_review(session: Session, enterprise_id: int, review_id: int) -> AccessReview:
    """The review, if it is this enterprise's: another enterprise's is not even confirmed to exist."""
    review = session.get(AccessReview, review_id)
    if review is None or review.enterprise_id != enterprise_id:
        raise NotFound("Unknown access review.", "review_id")
    return review


def is_overdue(review: AccessReview, day: date | None = None) -> bool:
    """Open after its last day: `reviews close-due` has not run yet. No answer is taken any more."""
    return review.is_open and review.deadline < (day or today())


@dataclass(frozen=True)
class Progress:
    total: int
    answered: int

    @property
    def percent(self) -> int:
        return 100 * self.answered // self.total if self.total else 100


def progress(review: AccessReview) -> Progress:
    return Progress(len(review.items), sum(1 for item in review.items if item.answered))


# --- what is current -----------------------------------------------------------------------------


def _current_rights(session: Session, enterprise_id: int) -> list[tuple[Right, Person, Person]]:
    grantor = Person.__table__.alias("grantor")
    rows = session.execute(
        select(Right, Person, grantor.c.first_name, grantor.c.last_name)
        .join(Person, Person.id == Right.person_id)
        .join(grantor, grantor.c.id == Right.granted_by_id)
        .where(Right.enterprise_id == enterprise_id, Right.revoked_at.is_(None))
        .order_by(Person.last_name, Person.first_name, Person.id, Right.application)).all()
    return [(right, person, f"{first} {last}") for right, person, first, last in rows]


def _current_scopes(session: Session, enterprise_id: int, day: date) -> list[tuple[MandateApplication, Mandate]]:
    rows = session.execute(
        select(MandateApplication, Mandate).join(Mandate, Mandate.id == MandateApplication.mandate_id)
        .options(joinedload(Mandate.provider).joinedload(Provider.enterprise))
        .where(Mandate.employer_id == enterprise_id, Mandate.status == MandateStatus.ACCEPTED,
               or_(Mandate.end_date.is_(None), Mandate.end_date >= day))
        .order_by(Mandate.id, MandateApplication.application_group, MandateApplication.application)).all()
    return [(scope, mandate) for scope, mandate in rows]


def _right_item(right: Right, person: Person, granted_by: str) -> ReviewItem:
    return ReviewItem(kind=ItemKind.RIGHT, target_id=right.id, person_id=person.id, application=right.application,
                      snapshot={"person": person.full_name, "person_id": person.id, "application": right.application,
                                "granted_by": granted_by, "granted_at": right.granted_at.isoformat()})


def _scope_item(scope: MandateApplication, mandate: Mandate) -> ReviewItem:
    provider = mandate.provider.enterprise
    return ReviewItem(kind=ItemKind.MANDATE_SCOPE, target_id=scope.id, mandate_id=mandate.id,
                      application=scope.application,
                      snapshot={"provider": provider.name, "provider_kbo": provider.kbo_display,
                                "mandate_id": mandate.id, "mandate_kind": mandate.kind.value,
                                "group": scope.application_group, "application": scope.application,
                                "since": mandate.effective_from.isoformat() if mandate.effective_from else None,
                                "until": mandate.end_date.isoformat() if mandate.end_date else None})


def current_items(session: Session, enterprise: Enterprise) -> list[ReviewItem]:
    """Every current right of the enterprise's people and every application within a mandate in force
    (accepted, not ended: a mandate starting later is entrusted already), as unsaved items."""
    rights = [_right_item(*row) for row in _current_rights(session, enterprise.id)]
    return rights + [_scope_item(*row) for row in _current_scopes(session, enterprise.id, today())]


def target_present(session: Session, item: ReviewItem) -> bool:
    """Is the right, or the application within a mandate in force, still there?"""
    if item.kind is ItemKind.RIGHT:
        right = session.get(Right, item.target_id)
        return right is not None and right.revoked_at is None
    scope = session.get(MandateApplication, item.target_id)
    return scope is not None and mandate_ops.mandate_in_force(scope.mandate)


# --- starting ------------------------------------------------------------------------------------


def _check_deadline(deadline: date | None, settings: ReviewSettings) -> date:
    if deadline is None:
        raise ValidationError("The deadline is required.", "deadline")
    first, last = (today() + timedelta(days=settings.min_deadline_days),
                   today() + timedelta(days=settings.max_deadline_days))
    if deadline < first:
        raise ValidationError("The deadline is the last day to answer: choose %(first)s or later.", "deadline",
                              first=first.isoformat())
    if deadline > last:
        raise ValidationError("The deadline lies at most %(days)s days ahead: choose %(last)s or earlier.",
                              "deadline", days=settings.max_deadline_days, last=last.isoformat())
    return deadline


def _second_review_refusal(enterprise: Enterprise, review: AccessReview | None) -> Conflict:
    if review is None:
        return Conflict("%(kbo)s already has an open access review.", None, kbo=enterprise.kbo_display)
    return Conflict("%(kbo)s already has an open access review (number %(number)s, until %(deadline)s); close it "
                    "before starting another.", None, kbo=enterprise.kbo_display, number=review.id,
                    deadline=review.deadline.isoformat())


def start_review(session: Session, enterprise: Enterprise, *, deadline: date | None, revoke_unanswered: bool,
                 by: RequestContext, settings: ReviewSettings | None = None) -> AccessReview:
    """List every current right and mandate scope of the enterprise for an answer by `deadline`."""
    deadline = _check_deadline(deadline, settings or load_settings())
    existing = open_review_of(session, enterprise.id)
    if existing is not None:
        raise _second_review_refusal(enterprise, existing)
    items = current_items(session, enterprise)
    if not items:
        raise ValidationError("%(kbo)s has no right granted and no mandate in force: there is nothing to review.",
                              None, kbo=enterprise.kbo_display)
    review = AccessReview(enterprise_id=enterprise.id, started_by_id=by.actor_person_id,
                          started_by_label=(by.actor_label or "")[:120] or None, started_at=utcnow(),
                          deadline=deadline, revoke_unanswered=bool(revoke_unanswered), status=ReviewStatus.OPEN,
                          items=items)
    try:
        # The partial unique index holds one open review per enterprise against a concurrent start.
        with session.begin_nested():
            session.add(review)
            session.flush()
    except IntegrityError:
        raise _second_review_refusal(enterprise, open_review_of(session, enterprise.id)) from None
    record(session, by, action="access_review.start", outcome="success", enterprise_id=enterprise.id,
           details={"review_id": review.id, "deadline": deadline.isoformat(),
                    "revoke_unanswered": review.revoke_unanswered,
                    "items": {"rights": sum(1 for i in items if i.kind is ItemKind.RIGHT),
                              "mandate_scopes": sum(1 for i in items if i.kind is ItemKind.MANDATE_SCOPE)}})
    return review


# --- answering -----------------------------------------------------------------------------------


def _lock(session: Session, review: AccessReview) -> AccessReview:
    """Answers and the closing run wait for each other (PostgreSQL row lock; SQLite serialises writers)."""
    return session.scalars(select(AccessReview).where(AccessReview.id == review.id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _require_answerable(review: AccessReview) -> None:
    if not review.is_open:
        raise Conflict("Access review %(number)s is closed; its items can no longer be answered.", "review_id",
                       number=review.id)
    if is_overdue(review):
        raise Conflict("The deadline of access review %(number)s (%(deadline)s) has passed; unanswered items are "
                       "flagged when it closes.", "review_id", number=review.id,
                       deadline=review.deadline.isoformat())


def _item_of(session: Session, review: AccessReview, item_id: int | None) -> ReviewItem:
    # Read again from the database (not the session's copy, loaded before the review's lock was taken):
    # two answers to one item at once wait for each other on that lock, and the second sees the first.
    item = session.scalars(select(ReviewItem).where(ReviewItem.id == item_id)
                           .execution_options(populate_existing=True)).one_or_none() if item_id else None
    if item is None or item.review_id != review.id:
        raise NotFound("Unknown item of this access review.", "item_id")
    return item


def parse_decision(value: str | None) -> ItemDecision:
    try:
        return ItemDecision((value or "").strip())
    except ValueError:
        raise ValidationError("Answer 'confirm' or 'revoke'.", "decision") from None


def _clean_note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise ValidationError("A note has at most %(max)s characters.", "note", max=MAX_NOTE)
    return note


def _via(review: AccessReview, why: str) -> tuple[str, list[str]]:
    """The reason and path written on the revocation's own audit record."""
    return f"access review {review.id}: {why}", [f"access review {review.id}", why]


def _revoke_target(session: Session, review: AccessReview, item: ReviewItem, by: RequestContext, why: str) -> None:
    reason, path = _via(review, why)
    if item.kind is ItemKind.RIGHT:
        access_ops.revoke_right(session, review.enterprise, session.get(Person, item.person_id), item.application,
                                by=by, reason=reason, path=path)
    else:
        mandate_ops.remove_from_scope(session, session.get(Mandate, item.mandate_id), item.application, by=by,
                                      reason=reason, path=path)
    item.revoked_at = utcnow()


def revoke_action(item: ReviewItem) -> str:
    """The access-management action the decision point must allow to revoke this item."""
    return "manage_rights" if item.kind is ItemKind.RIGHT else "manage_providers"


def check_item(session: Session, review: AccessReview, item_id: int | None) -> ReviewItem:
    """The item, if the review can still be answered and the item is its own and unanswered."""
    _require_answerable(review)
    item = _item_of(session, review, item_id)
    if item.answered:
        raise Conflict("This item was answered already.", "item_id")
    return item


def decide_item(session: Session, review: AccessReview, item_id: int | None, decision: ItemDecision | str, *,
                note: str | None = None, by: RequestContext) -> ReviewItem:
    """Confirm an item, or revoke it at once. An item whose right or scope has already ended is answered
    and reported as gone: there is nothing left to confirm or revoke."""
    decision = decision if isinstance(decision, ItemDecision) else parse_decision(decision)
    note = _clean_note(note)
    review = _lock(session, review)
    item = check_item(session, review, item_id)
    if not target_present(session, item):
        item.outcome = ItemOutcome.GONE
    elif decision is ItemDecision.CONFIRM:
        item.outcome = ItemOutcome.CONFIRMED
    else:
        _revoke_target(session, review, item, by, "revoked by the reviewer")
        item.outcome = ItemOutcome.REVOKED
    item.decision, item.decided_by_id, item.decided_at, item.note = decision, by.actor_person_id, utcnow(), note
    session.flush()
    record(session, by, action="access_review.decide", outcome="success", enterprise_id=review.enterprise_id,
           application=item.application,
           details={"review_id": review.id, "item_id": item.id, "kind": item.kind.value, "target": item.snapshot,
                    "decision": decision.value, "outcome": item.outcome.value, "note": note})
    return item


# --- closing ---------------------------------------------------------------------------------------


def due_reviews(session: Session, day: date) -> list[AccessReview]:
    return list(session.scalars(select(AccessReview).where(AccessReview.status == ReviewStatus.OPEN,
                                                           AccessReview.deadline < day)
                                .order_by(AccessReview.deadline, AccessReview.id)))


def close_due_reviews(session: Session, day: date | None = None, *, by: RequestContext) -> list[AccessReview]:
    """Close every open review whose last day lies before `day` (today): run daily (reviews close-due)."""
    return [close_review(session, review, by=by) for review in due_reviews(session, day or today())]


def close_review(session: Session, review: AccessReview, *, by: RequestContext) -> AccessReview:
    """Flag every unanswered item, revoke it if the review says so, and keep the report."""
    review = _lock(session, review)
    if not review.is_open:
        return review  # a concurrent run closed it first
    now = utcnow()
    why = f"unanswered by the deadline {review.deadline.isoformat()}"
    for item in review.items:
        if item.answered:
            continue
        item.flagged_at = now
        if not target_present(session, item):
            item.outcome = ItemOutcome.GONE
        elif review.revoke_unanswered:
            _revoke_target(session, review, item, by, why)
            item.outcome = ItemOutcome.REVOKED_AT_DEADLINE
        else:
            item.outcome = ItemOutcome.FLAGGED
    with session.no_autoflush:  # the CHECK constraints want status, closed_at and report in one UPDATE
        review.status, review.closed_at = ReviewStatus.CLOSED, now
        review.report = build_report(session, review)
    session.flush()
    record(session, by, action="access_review.close", outcome="success", enterprise_id=review.enterprise_id,
           details={"review_id": review.id, "deadline": review.deadline.isoformat(),
                    "revoke_unanswered": review.revoke_unanswered, "counts": review.report["counts"],
                    "flagged_items": [i.id for i in review.items if i.flagged_at is not None]})
    return review


# --- the report ------------------------------------------------------------------------------------

COUNTED = ("confirmed", "revoked", "revoked_at_deadline", "flagged", "gone")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _person_name(session: Session, person_id: int | None) -> str | None:
    person = session.get(Person, person_id) if person_id else None
    return person.full_name if person else None


def report_item(session: Session, item: ReviewItem) -> dict:
    snap = item.snapshot
    return {"item_id": item.id, "kind": item.kind.value, "application": item.application,
            "person": snap.get("person"), "provider": snap.get("provider"), "provider_kbo": snap.get("provider_kbo"),
            "group": snap.get("group"), "decision": item.decision.value if item.decision else None,
            "decided_by": _person_name(session, item.decided_by_id), "decided_at": _iso(item.decided_at),
            "note": item.note, "flagged_at": _iso(item.flagged_at), "revoked_at": _iso(item.revoked_at),
            "outcome": item.outcome.value if item.outcome else None}


def build_report(session: Session, review: AccessReview) -> dict:
    """What the review found and did, readable without the rows it was about (those may be gone).

    Every item has exactly one outcome, so the counts add up to the items: `flagged` are unanswered items
    left as they were, `revoked_at_deadline` unanswered items the review revoked, `gone` items whose right or
    scope had already ended before an answer or the deadline. `unanswered` counts all items nobody answered."""
    counts = {name: 0 for name in COUNTED}
    for item in review.items:
        counts[item.outcome.value] += 1
    counts["items"] = len(review.items)
    counts["unanswered"] = sum(1 for item in review.items if not item.answered)
    enterprise = review.enterprise
    return {"review_id": review.id,
            "enterprise": {"id": enterprise.id, "name": enterprise.name, "kbo": enterprise.kbo_display},
            "started_at": _iso(review.started_at), "started_by": _person_name(session, review.started_by_id)
            or review.started_by_label, "deadline": review.deadline.isoformat(),
            "revoke_unanswered": review.revoke_unanswered, "closed_at": _iso(review.closed_at),
            "counts": counts, "items": [report_item(session, item) for item in review.items]}


REPORT_COLUMNS = ("item_id", "kind", "person", "provider", "provider_kbo", "group", "application", "decision",
                  "decided_by", "decided_at", "note", "flagged_at", "revoked_at", "outcome")
