"""reviews/operations.py: a campaign lists exactly what is current, takes answers (a revocation through the
existing operations, with the path "access review N"), and at the deadline flags, and if it says so revokes,
what nobody answered, keeping a report. Refusals write nothing at all. The clock stands at 2026-11-02."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from access import operations as aops
from access.clock import today, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Right
from audit.models import AuditRecord
from audit.operations import CLI_CONTEXT
from mandates import operations as mops
from mandates.models import MandateStatus, StaffAssignment
from reviews import operations as rops
from reviews.models import AccessReview, ItemKind, ItemOutcome, ReviewItem, ReviewStatus
from tests.factories import make_user_with_rights
from tests.unit.mandates.helpers import Q1_2027, TODAY, Unchanged
from tests.unit.reviews.conftest import World

DEADLINE = TODAY + timedelta(days=14)


def rights_of(session, world: World) -> set[tuple[str, str]]:
    return {(r.person.first_name, r.application) for r in session.scalars(select(Right).where(
        Right.enterprise_id == world.employer.enterprise.id, Right.revoked_at.is_(None)))}


def start(session, world: World, *, revoke_unanswered: bool = False, deadline: date = DEADLINE) -> AccessReview:
    return rops.start_review(session, world.employer.enterprise, deadline=deadline,
                             revoke_unanswered=revoke_unanswered, by=world.admin.ctx)


def item(review: AccessReview, kind: ItemKind, application: str, who: str | None = None) -> ReviewItem:
    """The review's item on `application` (of the person whose first name is `who`, for a right)."""
    return next(i for i in review.items if i.kind is kind and i.application == application
                and (who is None or i.snapshot.get("person", "").startswith(who)))


def audit(session, action: str) -> list[AuditRecord]:
    return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id)))


def listed(review: AccessReview) -> set[tuple]:
    return {(i.kind.value, i.snapshot.get("person") or i.snapshot.get("provider"), i.application)
            for i in review.items}


# --- starting -------------------------------------------------------------------------------------


def test_start_lists_exactly_the_current_rights_and_mandate_scopes(db_session, kit, world):
    # Not listed: a revoked right, another enterprise's right, a pending form, an ended mandate.
    aops.grant_right(db_session, world.employer.enterprise, world.bob.person, "asr", catalogue=kit.catalogue,
                     by=world.admin.ctx)
    aops.revoke_right(db_session, world.employer.enterprise, world.bob.person, "asr", by=world.admin.ctx)
    other = kit.employer()
    make_user_with_rights(db_session, other.enterprise, ["dmfa"], by=other.admin.ctx, catalogue=kit.catalogue)
    kit.file(other, world.provider, start=Q1_2027)  # pending, and another employer's
    secretariat = kit.secretariat(name="Sociaal Secretariaat Zuid")
    ended = kit.affiliate(world.employer, secretariat)
    mops.end_mandate(db_session, ended, TODAY - timedelta(days=1), by=world.admin.ctx)

    review = start(db_session, world, revoke_unanswered=True)

    alice, bob = world.alice.person.full_name, world.bob.person.full_name
    assert listed(review) == {("right", alice, "dmfa"), ("right", alice, "asr"), ("right", bob, "dmfa"),
                              ("mandate_scope", "Boekhouding Peeters", "asr"),
                              ("mandate_scope", "Boekhouding Peeters", "tijdelijke_werkloosheid")}
    assert review.status is ReviewStatus.OPEN and review.deadline == DEADLINE and review.revoke_unanswered
    assert review.started_by_id == world.admin.person.id
    scope = item(review, ItemKind.MANDATE_SCOPE, "asr")
    assert scope.mandate_id == world.form.id and scope.snapshot["group"] == "asr"
    assert scope.snapshot["provider_kbo"] == world.provider.enterprise.kbo_display
    right = item(review, ItemKind.RIGHT, "dmfa", "Alice")
    assert right.target_id == db_session.scalar(select(Right.id).where(
        Right.person_id == world.alice.person.id, Right.application == "dmfa", Right.revoked_at.is_(None)))
    assert all(i.decision is None and i.outcome is None for i in review.items)
    [record] = audit(db_session, "access_review.start")
    assert record.enterprise_id == world.employer.enterprise.id
    assert record.details == {"review_id": review.id, "deadline": DEADLINE.isoformat(), "revoke_unanswered": True,
                              "items": {"rights": 3, "mandate_scopes": 2}}


@pytest.mark.parametrize("deadline, message", [
    (TODAY, "choose 2026-11-03 or later"),
    (TODAY - timedelta(days=3), "choose 2026-11-03 or later"),
    (TODAY + timedelta(days=91), "choose 2027-01-31 or earlier"),
    (None, "The deadline is required."),
])
def test_a_deadline_not_from_tomorrow_to_90_days_ahead_is_refused(db_session, world, deadline, message):
    with Unchanged(db_session), pytest.raises(ValidationError) as refused:
        start(db_session, world, deadline=deadline)
    assert refused.value.field == "deadline" and message in refused.value.message


def test_the_deadline_limits_are_the_configured_ones(db_session, world, tmp_path):
    path = tmp_path / "reviews.toml"
    path.write_text("min_deadline_days = 7\nmax_deadline_days = 30\n")
    settings = rops.load_settings(path)
    with Unchanged(db_session), pytest.raises(ValidationError):
        rops.start_review(db_session, world.employer.enterprise, deadline=TODAY + timedelta(days=6),
                          revoke_unanswered=False, by=world.admin.ctx, settings=settings)
    review = rops.start_review(db_session, world.employer.enterprise, deadline=TODAY + timedelta(days=30),
                               revoke_unanswered=False, by=world.admin.ctx, settings=settings)
    assert review.deadline == date(2026, 12, 2)


def test_a_second_open_review_is_refused_by_the_operation(db_session, world):
    first = start(db_session, world)
    with Unchanged(db_session), pytest.raises(Conflict) as refused:
        start(db_session, world)
    assert f"number {first.id}" in refused.value.message


def test_a_second_open_review_is_refused_by_the_database_index(db_session, world):
    start(db_session, world)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(AccessReview(enterprise_id=world.employer.enterprise.id, started_at=utcnow(),
                                    deadline=DEADLINE, revoke_unanswered=False, status=ReviewStatus.OPEN))
        db_session.flush()


def test_once_closed_a_new_review_may_start(db_session, world, clock):
    first = start(db_session, world)
    clock.advance(days=15)
    rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    second = start(db_session, world, deadline=today() + timedelta(days=5))
    assert first.status is ReviewStatus.CLOSED and second.status is ReviewStatus.OPEN


def test_nothing_to_review_is_refused(db_session, kit):
    lonely = kit.employer()
    with Unchanged(db_session), pytest.raises(ValidationError, match="nothing to review"):
        rops.start_review(db_session, lonely.enterprise, deadline=DEADLINE, revoke_unanswered=False,
                          by=lonely.admin.ctx)


# --- answering ------------------------------------------------------------------------------------


def test_confirming_changes_nothing_but_the_item(db_session, world):
    review = start(db_session, world)
    target = item(review, ItemKind.RIGHT, "dmfa", "Bob")
    before = rights_of(db_session, world)
    answered = rops.decide_item(db_session, review, target.id, "confirm", note=" still needed ", by=world.admin.ctx)
    assert answered.outcome is ItemOutcome.CONFIRMED and answered.note == "still needed"
    assert answered.decided_by_id == world.admin.person.id and answered.decided_at is not None
    assert rights_of(db_session, world) == before
    [record] = audit(db_session, "access_review.decide")
    assert record.details["decision"] == "confirm" and record.details["outcome"] == "confirmed"
    assert record.details["item_id"] == target.id and record.application == "dmfa"


def test_revoking_a_right_goes_through_revoke_right_with_the_review_as_path(db_session, world):
    review = start(db_session, world)
    target = item(review, ItemKind.RIGHT, "asr", "Alice")
    rops.decide_item(db_session, review, target.id, "revoke", by=world.co_admin.ctx)
    assert ("Alice", "asr") not in rights_of(db_session, world)
    assert target.outcome is ItemOutcome.REVOKED and target.revoked_at is not None
    [revoked] = audit(db_session, "right.revoke")
    assert revoked.path == [f"access review {review.id}", "revoked by the reviewer"]
    assert revoked.reason == f"access review {review.id}: revoked by the reviewer"
    assert revoked.actor_person_id == world.co_admin.person.id
    assert revoked.details["before"] == {"right": True} and revoked.details["after"] == {"right": False}
    decided = audit(db_session, "access_review.decide")[-1]
    assert decided.id > revoked.id and decided.details["outcome"] == "revoked"


def test_revoking_a_mandate_scope_narrows_the_mandate_then_ends_it_with_its_last_application(db_session, kit,
                                                                                             world):
    staff = kit.staff(world.provider)
    kit.assign(world.provider, world.form, staff, "asr")
    review = start(db_session, world)
    rops.decide_item(db_session, review, item(review, ItemKind.MANDATE_SCOPE, "asr").id, "revoke",
                     by=world.admin.ctx)
    assert world.form.applications() == ["tijdelijke_werkloosheid"]
    assert world.form.status is MandateStatus.ACCEPTED and world.form.end_date is None
    assignment = db_session.scalar(select(StaffAssignment).where(StaffAssignment.person_id == staff.id))
    assert assignment.revoked_at is not None  # the staff member's assignment ended with the application
    assert not kit.decide(staff, world.employer, "asr").allowed
    [narrowed] = audit(db_session, "mandate.scope.remove")
    assert narrowed.details["before"]["applications"] == ["asr", "tijdelijke_werkloosheid"]
    assert narrowed.details["applications"] == ["tijdelijke_werkloosheid"]
    assert narrowed.details["staff_unassigned"] == [staff.id]
    assert narrowed.path == [f"access review {review.id}", "revoked by the reviewer"]
    assert kit.outbox(world.provider.admin.person, "mandate-scope-narrowed")

    rops.decide_item(db_session, review, item(review, ItemKind.MANDATE_SCOPE, "tijdelijke_werkloosheid").id,
                     "revoke", by=world.admin.ctx)
    assert world.form.end_date == TODAY - timedelta(days=1)  # access ends at once
    assert world.form.applications() == ["tijdelijke_werkloosheid"]  # its scope is kept as it was signed
    [ended] = audit(db_session, "mandate.form.end")
    assert ended.path == [f"access review {review.id}", "revoked by the reviewer"]


def test_a_target_gone_meanwhile_is_reported_as_gone_not_an_error(db_session, world):
    review = start(db_session, world)
    aops.revoke_right(db_session, world.employer.enterprise, world.bob.person, "dmfa", by=world.admin.ctx)
    target = item(review, ItemKind.RIGHT, "dmfa", "Bob")
    answered = rops.decide_item(db_session, review, target.id, "revoke", by=world.admin.ctx)
    assert answered.outcome is ItemOutcome.GONE and answered.revoked_at is None
    assert len(audit(db_session, "right.revoke")) == 1  # only the administrator's own


def test_refusals_of_an_answer_write_nothing(db_session, kit, world, clock):
    review = start(db_session, world)
    first = item(review, ItemKind.RIGHT, "dmfa", "Bob")
    rops.decide_item(db_session, review, first.id, "confirm", by=world.admin.ctx)
    other = kit.employer()
    make_user_with_rights(db_session, other.enterprise, ["dmfa"], by=other.admin.ctx, catalogue=kit.catalogue)
    foreign = rops.start_review(db_session, other.enterprise, deadline=DEADLINE, revoke_unanswered=False,
                                by=other.admin.ctx)
    second = item(review, ItemKind.RIGHT, "asr", "Alice")
    cases = [
        (first.id, "revoke", Conflict, "item_id", "answered already"),
        (999_999, "confirm", NotFound, "item_id", "Unknown item"),
        (foreign.items[0].id, "confirm", NotFound, "item_id", "Unknown item"),
        (second.id, "maybe", ValidationError, "decision", "'confirm' or 'revoke'"),
    ]
    for item_id, decision, error, field, message in cases:
        with Unchanged(db_session), pytest.raises(error) as refused:
            rops.decide_item(db_session, review, item_id, decision, by=world.admin.ctx)
        assert refused.value.field == field and message in refused.value.message
    with Unchanged(db_session), pytest.raises(ValidationError) as refused:
        rops.decide_item(db_session, review, second.id, "confirm", note="x" * 1001, by=world.admin.ctx)
    assert refused.value.field == "note"

    clock.advance(days=15)  # overdue: the last day was yesterday, close-due has not run yet
    assert rops.is_overdue(review)
    with Unchanged(db_session), pytest.raises(Conflict, match="has passed"):
        rops.decide_item(db_session, review, second.id, "confirm", by=world.admin.ctx)
    rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    with Unchanged(db_session), pytest.raises(Conflict, match="is closed"):
        rops.decide_item(db_session, review, second.id, "confirm", by=world.admin.ctx)


# --- closing at the deadline -------------------------------------------------------------------------


def test_from_start_to_deadline_with_revocation_of_unanswered_items(db_session, kit, world, clock):
    review = start(db_session, world, revoke_unanswered=True)
    rops.decide_item(db_session, review, item(review, ItemKind.RIGHT, "dmfa", "Alice").id, "confirm",
                     by=world.admin.ctx)
    rops.decide_item(db_session, review, item(review, ItemKind.RIGHT, "asr", "Alice").id, "revoke",
                     by=world.admin.ctx)
    rops.decide_item(db_session, review, item(review, ItemKind.MANDATE_SCOPE, "asr").id, "confirm",
                     by=world.admin.ctx)
    # Unanswered: Bob's dmfa and the scope tijdelijke_werkloosheid.

    clock.advance(days=14)  # the deadline itself: still a day to answer, nothing is due
    assert rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT) == []
    assert review.is_open and ("Bob", "dmfa") in rights_of(db_session, world)

    clock.advance(days=1)
    [closed] = rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    assert closed is review and review.status is ReviewStatus.CLOSED and review.closed_at is not None
    assert rights_of(db_session, world) == {("Alice", "dmfa")}
    assert world.form.applications() == ["asr"] and world.form.end_date is None
    bob = item(review, ItemKind.RIGHT, "dmfa", "Bob")
    assert bob.outcome is ItemOutcome.REVOKED_AT_DEADLINE and bob.flagged_at is not None and bob.decision is None
    why = f"unanswered by the deadline {DEADLINE.isoformat()}"
    revoked = [r for r in audit(db_session, "right.revoke") if r.path and why in r.path]
    assert [r.details["person"] for r in revoked] == [world.bob.person.full_name]
    assert revoked[0].path == [f"access review {review.id}", why] and revoked[0].actor_label == "cli"
    [narrowed] = audit(db_session, "mandate.scope.remove")
    assert narrowed.path == [f"access review {review.id}", why]

    report = review.report
    assert report["counts"] == {"items": 5, "confirmed": 2, "revoked": 1, "revoked_at_deadline": 2, "flagged": 0,
                                "gone": 0, "unanswered": 2}
    assert report["enterprise"]["kbo"] == world.employer.enterprise.kbo_display
    assert report["started_by"] == world.admin.person.full_name and report["revoke_unanswered"] is True
    by_app = {(row["person"] or row["provider"], row["application"]): row["outcome"] for row in report["items"]}
    assert by_app[(world.bob.person.full_name, "dmfa")] == "revoked_at_deadline"
    assert by_app[("Boekhouding Peeters", "tijdelijke_werkloosheid")] == "revoked_at_deadline"
    [close] = audit(db_session, "access_review.close")
    assert close.details["counts"] == report["counts"]
    assert sorted(close.details["flagged_items"]) == sorted(i.id for i in review.items if i.flagged_at)

    assert rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT) == []  # nothing left to close


def test_without_revoke_unanswered_items_are_only_flagged(db_session, world, clock):
    review = start(db_session, world, revoke_unanswered=False)
    rops.decide_item(db_session, review, item(review, ItemKind.RIGHT, "dmfa", "Bob").id, "confirm",
                     by=world.admin.ctx)
    before = rights_of(db_session, world)
    aops.revoke_right(db_session, world.employer.enterprise, world.alice.person, "asr", by=world.admin.ctx)
    clock.advance(days=15)
    rops.close_due_reviews(db_session, today(), by=CLI_CONTEXT)
    assert rights_of(db_session, world) == before - {("Alice", "asr")}
    assert world.form.applications() == ["asr", "tijdelijke_werkloosheid"]
    assert review.report["counts"] == {"items": 5, "confirmed": 1, "revoked": 0, "revoked_at_deadline": 0,
                                       "flagged": 3, "gone": 1, "unanswered": 4}
    gone = item(review, ItemKind.RIGHT, "asr", "Alice")
    assert gone.outcome is ItemOutcome.GONE and gone.flagged_at is not None
    assert audit(db_session, "right.revoke")[-1].path is None  # only the administrator's own revocation


def test_an_overdue_review_is_shown_as_such_until_it_closes(db_session, world, clock):
    review = start(db_session, world)
    assert not rops.is_overdue(review)
    clock.advance(days=15)
    assert rops.is_overdue(review)
    assert rops.progress(review).total == 5 and rops.progress(review).answered == 0
