"""GET /api/v1/me/data-access: the records about the person logged in that others acted (the data
subject view, audit/subjects.py), newest first, by page."""
from __future__ import annotations

from datetime import datetime

from flask import request, url_for
from pydantic import BaseModel

from audit.subjects import DATA_SUBJECT_ACCESS, PAGE_SIZE, records_about
from portal.api.registry import api_route
from portal.context import current_subject
from portal.database import get_session
from portal.gate import check
from portal.views.audit_subject import parse_page_number


class PartyOut(BaseModel):
    name: str
    kbo: str | None


class SubjectRecordOut(BaseModel):
    occurred_at: datetime
    actor: str | None  # the acting person's name, or "cli" for the portal's operator
    provider: PartyOut | None  # the service provider whose staff member acted
    enterprise: PartyOut | None  # the enterprise acted for
    application: str | None
    action: str
    outcome: str


class SubjectPageOut(BaseModel):
    records: list[SubjectRecordOut]
    page: int
    next: str | None


# gate="public" as for the person's other own lists (/me/applications): no security scheme in the
# OpenAPI document, since what it answers is always about whoever is logged in; the decision point
# is still asked (and refuses an anonymous visitor or an API client).
@api_route("/me/data-access", "GET", summary="Who consulted or changed data about me (newest first)",
           tag="audit", gate="public", response=SubjectPageOut,
           query={"page": "page number, 1 (the newest) and up"})
def my_data_access():
    check(DATA_SUBJECT_ACCESS, "view", None)
    page = parse_page_number(request.args.get("page"))
    result = records_about(get_session(), current_subject().person_id, page=page, per_page=PAGE_SIZE)
    return SubjectPageOut(records=[SubjectRecordOut(**row.as_json()) for row in result.rows], page=result.page,
                          next=url_for("api.my_data_access", page=page + 1) if result.has_next else None)
