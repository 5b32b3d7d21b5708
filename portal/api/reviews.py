"""Access review campaigns on the API (reviews/): list, start, read (with the items, or the report of a closed
campaign) and answer an item. Persons only, with their session: the decision point refuses API clients
access management. Who may do what is portal/views/reviews.py's: access_review on toegangsbeheer, and
manage_rights or manage_providers to revoke."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from flask import jsonify
from pydantic import BaseModel, Field

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import as_utc
from access.security_officers import ACCESS_REVIEW, ACCESS_REVIEW_AUTO_REVOKE
from portal.api.registry import api_route
from portal.api.schemas import Input
from portal.context import request_context
from portal.database import get_session
from portal.gate import check
from portal.views.reviews import check_answer
from reviews import operations as rops
from reviews.models import AccessReview, ReviewItem


class ReviewIn(Input):
    deadline: date = Field(description="the last day to answer (Belgian calendar date), from tomorrow on")
    revoke_unanswered: bool = Field(default=False, description="revoke what is still unanswered after that day")


class AnswerIn(Input):
    decision: Literal["confirm", "revoke"]
    note: str | None = Field(default=None, max_length=1000)


class ProgressOut(BaseModel):
    total: int
    answered: int


class ReviewItemOut(BaseModel):
    id: int
    kind: Literal["right", "mandate_scope"]
    application: str
    person_id: int | None
    person: str | None
    mandate_id: int | None
    provider: str | None
    provider_kbo: str | None
    group: str | None
    still_present: bool | None
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    flagged_at: datetime | None
    revoked_at: datetime | None
    outcome: str | None


class ReviewOut(BaseModel):
    id: int
    enterprise_id: int
    status: Literal["open", "closed"]
    started_at: datetime
    started_by: str | None
    deadline: date
    revoke_unanswered: bool
    overdue: bool
    closed_at: datetime | None
    progress: ProgressOut


class ReviewDetailOut(ReviewOut):
    items: list[ReviewItemOut]
    report: dict[str, Any] | None = Field(description="kept when the review closed: counts and every item")


def _moment(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _summary(review: AccessReview) -> dict:
    progress = rops.progress(review)
    return dict(id=review.id, enterprise_id=review.enterprise_id, status=review.status.value,
                started_at=_moment(review.started_at),
                started_by=review.started_by.full_name if review.started_by else review.started_by_label,
                deadline=review.deadline, revoke_unanswered=review.revoke_unanswered,
                overdue=rops.is_overdue(review), closed_at=_moment(review.closed_at),
                progress=ProgressOut(total=progress.total, answered=progress.answered))


def item_out(item: ReviewItem, present: bool | None) -> ReviewItemOut:
    snap = item.snapshot
    return ReviewItemOut(
        id=item.id, kind=item.kind.value, application=item.application, person_id=item.person_id,
        person=snap.get("person"), mandate_id=item.mandate_id, provider=snap.get("provider"),
        provider_kbo=snap.get("provider_kbo"), group=snap.get("group"), still_present=present,
        decision=item.decision.value if item.decision else None,
        decided_by=item.decided_by.full_name if item.decided_by else None, decided_at=_moment(item.decided_at),
        note=item.note, flagged_at=_moment(item.flagged_at), revoked_at=_moment(item.revoked_at),
        outcome=item.outcome.value if item.outcome else None)


def _detail(review: AccessReview) -> ReviewDetailOut:
    session = get_session()
    items = [item_out(item, rops.target_present(session, item) if review.is_open else None)
             for item in review.items]
    return ReviewDetailOut(**_summary(review), items=items, report=review.report)


@api_route("/enterprises/<int:enterprise_id>/access-reviews", "GET",
           summary="The enterprise's access reviews, newest first", tag="access-reviews", gate=ACCESS_MANAGEMENT,
           response=list[ReviewOut])
def reviews_list(enterprise_id: int):
    check(ACCESS_MANAGEMENT, ACCESS_REVIEW, enterprise_id)
    session = get_session()
    ops.get_enterprise(session, enterprise_id)
    return jsonify([ReviewOut(**_summary(r)).model_dump(mode="json")
                    for r in rops.reviews_of(session, enterprise_id)])


@api_route("/enterprises/<int:enterprise_id>/access-reviews", "POST",
           summary="Start an access review: every current right and mandate scope, to answer by the deadline",
           tag="access-reviews", gate=ACCESS_MANAGEMENT, body=ReviewIn, response=ReviewDetailOut, status=201)
def review_start(enterprise_id: int, payload: ReviewIn):
    check(ACCESS_MANAGEMENT, ACCESS_REVIEW, enterprise_id)
    if payload.revoke_unanswered:
        check(ACCESS_MANAGEMENT, ACCESS_REVIEW_AUTO_REVOKE, enterprise_id)
    session = get_session()
    review = rops.start_review(session, ops.get_enterprise(session, enterprise_id), deadline=payload.deadline,
                               revoke_unanswered=payload.revoke_unanswered, by=request_context())
    return _detail(review)


@api_route("/enterprises/<int:enterprise_id>/access-reviews/<int:review_id>", "GET",
           summary="One access review with its items (and its report once closed)", tag="access-reviews",
           gate=ACCESS_MANAGEMENT, response=ReviewDetailOut)
def review_get(enterprise_id: int, review_id: int):
    check(ACCESS_MANAGEMENT, ACCESS_REVIEW, enterprise_id)
    return _detail(rops.get_review(get_session(), enterprise_id, review_id))


@api_route("/enterprises/<int:enterprise_id>/access-reviews/<int:review_id>/items/<int:item_id>/decision",
           "POST", summary="Answer one item: confirm it, or revoke it at once (an administrator's act)",
           tag="access-reviews", gate=ACCESS_MANAGEMENT, body=AnswerIn, response=ReviewItemOut)
def review_answer(enterprise_id: int, review_id: int, item_id: int, payload: AnswerIn):
    check(ACCESS_MANAGEMENT, ACCESS_REVIEW, enterprise_id)
    session = get_session()
    review = rops.get_review(session, enterprise_id, review_id)
    decision = rops.parse_decision(payload.decision)
    check_answer(enterprise_id, review, item_id, decision)
    item = rops.decide_item(session, review, item_id, decision, note=payload.note, by=request_context())
    return item_out(item, None)
