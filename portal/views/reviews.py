"""Access review campaigns of an enterprise (reviews/): the list with the start form, the campaign page
where each item is confirmed or revoked, and the report of a closed campaign (HTML and CSV).

Every page asks the decision point for access_review on access management (the enterprise's
administrators and its own security officers); revoking an item asks it again for the administrators'
own action on what the item is (manage_rights for a right, manage_providers for a mandate's scope).
"""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.decision import decide
from access.errors import DomainError
from access.security_officers import ACCESS_REVIEW, ACCESS_REVIEW_AUTO_REVOKE
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.forms import ReviewAnswerForm, StartReviewForm, apply_domain_error
from portal.gate import check, gated, self_gated
from portal.messages import error_text
from reviews import operations as rops
from reviews.models import AccessReview, ItemDecision, ItemKind, ReviewItem

bp = Blueprint("reviews", __name__, url_prefix="/enterprises/<int:enterprise_id>/access-reviews")

OUTCOME_LABELS = {
    "confirmed": _l("confirmed"),
    "revoked": _l("revoked by the reviewer"),
    "revoked_at_deadline": _l("revoked at the deadline (unanswered)"),
    "flagged": _l("flagged: unanswered, left as it was"),
    "gone": _l("already gone"),
}
KIND_LABELS = {"right": _l("right of a user"), "mandate_scope": _l("application of a service provider")}


def _allowed(enterprise_id: int, action: str) -> bool:
    """What the decision point would answer, to show or hide a button (not logged: the POST asks again)."""
    return decide(get_session(), current_subject(), enterprise_id, ACCESS_MANAGEMENT, action,
                  catalogue=catalogue()).allowed


def application_name(code: str | None) -> str:
    from flask_babel import get_locale

    app = catalogue().get(code) if code else None
    return app.name(str(get_locale() or "nl")) if app is not None else (code or "")


# --- shared with the API ---------------------------------------------------------------------------


def check_answer(enterprise_id: int, review: AccessReview, item_id: int, decision: ItemDecision) -> None:
    """A revocation is the administrators' act: ask the decision point for it on the item's kind. An item
    that is not this review's is left to the operation, which refuses it (404)."""
    if decision is not ItemDecision.REVOKE:
        return
    item = get_session().get(ReviewItem, item_id)
    if item is not None and item.review_id == review.id:
        check(ACCESS_MANAGEMENT, rops.revoke_action(item), enterprise_id)


# --- pages -------------------------------------------------------------------------------------------


def _index_page(enterprise_id: int, status: int = 200, form: StartReviewForm | None = None):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    reviews = rops.reviews_of(session, enterprise.id)
    return render_template("reviews/index.html", enterprise=enterprise, reviews=reviews,
                           open_review=next((r for r in reviews if r.is_open), None),
                           form=form or StartReviewForm(formdata=None), progress=rops.progress,
                           is_overdue=rops.is_overdue,
                           may_auto_revoke=_allowed(enterprise_id, ACCESS_REVIEW_AUTO_REVOKE)), status


def _review_page(enterprise_id: int, review: AccessReview, status: int = 200, error: str | None = None,
                 error_item: int | None = None, form: ReviewAnswerForm | None = None):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    if not review.is_open:
        return render_template("reviews/report.html", enterprise=enterprise, review=review, report=review.report,
                               outcome_labels=OUTCOME_LABELS, kind_labels=KIND_LABELS,
                               application_name=application_name, error=error), status
    if error_item not in {item.id for item in review.items}:
        error_item = None  # shown at the top: the item is not this review's
    can_revoke = {ItemKind.RIGHT: _allowed(enterprise_id, "manage_rights"),
                  ItemKind.MANDATE_SCOPE: _allowed(enterprise_id, "manage_providers")}
    return render_template("reviews/review.html", enterprise=enterprise, review=review,
                           progress=rops.progress(review), overdue=rops.is_overdue(review), can_revoke=can_revoke,
                           present={item.id: rops.target_present(session, item) for item in review.items},
                           form=form or ReviewAnswerForm(formdata=None), error=error, error_item=error_item,
                           outcome_labels=OUTCOME_LABELS, kind_labels=KIND_LABELS,
                           application_name=application_name), status


def _review_or_404(enterprise_id: int, review_id: int) -> AccessReview:
    try:
        return rops.get_review(get_session(), enterprise_id, review_id)
    except DomainError:
        abort(404)


@bp.route("")
@gated(ACCESS_MANAGEMENT, ACCESS_REVIEW)
def index(enterprise_id: int):
    return _index_page(enterprise_id)


@bp.route("", methods=["POST"])
@gated(ACCESS_MANAGEMENT, ACCESS_REVIEW)
def start(enterprise_id: int):
    form = StartReviewForm()
    if not form.validate_on_submit():
        return _index_page(enterprise_id, 422, form)
    if form.revoke_unanswered.data:
        check(ACCESS_MANAGEMENT, ACCESS_REVIEW_AUTO_REVOKE, enterprise_id)
    session = get_session()
    try:
        review = rops.start_review(session, ops.get_enterprise(session, enterprise_id), deadline=form.deadline.data,
                                   revoke_unanswered=form.revoke_unanswered.data, by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _index_page(enterprise_id, error.status, form)
    flash(_("Access review started: %(count)s items to answer by %(day)s.", count=len(review.items),
            day=review.deadline.isoformat()), "success")
    return redirect(url_for("reviews.show", enterprise_id=enterprise_id, review_id=review.id))


@bp.route("/<int:review_id>")
@gated(ACCESS_MANAGEMENT, ACCESS_REVIEW)
def show(enterprise_id: int, review_id: int):
    return _review_page(enterprise_id, _review_or_404(enterprise_id, review_id))


@bp.route("/<int:review_id>/items/<int:item_id>", methods=["POST"])
@self_gated
def answer(enterprise_id: int, review_id: int, item_id: int):
    check(ACCESS_MANAGEMENT, ACCESS_REVIEW, enterprise_id)
    review = _review_or_404(enterprise_id, review_id)
    form = ReviewAnswerForm()  # the CSRF token was checked before the view (portal.extensions)
    if not form.validate_on_submit():
        errors = [message for messages in form.errors.values() for message in messages]
        return _review_page(enterprise_id, review, 422, error=" ".join(map(str, errors)), error_item=item_id,
                            form=form)
    session = get_session()
    try:
        decision = rops.parse_decision(request.form.get("decision"))
        check_answer(enterprise_id, review, item_id, decision)
        item = rops.decide_item(session, review, item_id, decision, note=form.note.data, by=request_context())
    except DomainError as error:
        return _review_page(enterprise_id, review, error.status, error=error_text(error), error_item=item_id)
    flash(_answered_text(item), "success")
    return redirect(url_for("reviews.show", enterprise_id=enterprise_id, review_id=review_id) + f"#item-{item.id}")


def _answered_text(item: ReviewItem) -> str:
    what = item.snapshot.get("person") or item.snapshot.get("provider")
    app = application_name(item.application)
    if item.outcome.value == "gone":
        return _("%(who)s on %(application)s had already ended: nothing left to confirm or revoke.", who=what,
                 application=app)
    if item.outcome.value == "revoked":
        return _("%(who)s on %(application)s: revoked.", who=what, application=app)
    return _("%(who)s on %(application)s: confirmed.", who=what, application=app)


@bp.route("/<int:review_id>/report.csv")
@gated(ACCESS_MANAGEMENT, ACCESS_REVIEW)
def report_csv(enterprise_id: int, review_id: int):
    review = _review_or_404(enterprise_id, review_id)
    if review.is_open:
        abort(404, description=_("This access review is still open: its report is written when it closes."))
    return Response(report_as_csv(review.report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="access-review-{review.id}.csv"'})


def report_as_csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(rops.REPORT_COLUMNS)
    for row in report["items"]:
        writer.writerow([_csv_cell(row.get(column)) for column in rops.REPORT_COLUMNS])
    return buffer.getvalue()


def _csv_cell(value) -> str:
    """A cell a spreadsheet will not run as a formula (a name or note typed as =...)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.context_processor
def _helpers():
    from access.clock import BRUSSELS, as_utc

    return {"moment": lambda value: as_utc(value).astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M") if value else ""}
