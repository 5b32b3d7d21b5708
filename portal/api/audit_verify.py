"""GET /api/v1/audit/verification: the last result of `flask --app wsgi audit verify` and the retention
purges, for the institution's security officer (as the verify page, portal/views/audit_verify.py)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from access import security_officers as sec
from access.clock import as_utc
from portal.api.registry import api_route
from portal.database import get_session
from portal.gate import check
from portal.views.audit_verify import VERIFY_COMMAND, verification_facts


class VerificationOut(BaseModel):
    started_at: datetime
    finished_at: datetime
    age_seconds: int
    by: str | None
    ok: bool
    records: int
    links: int
    purged: int
    checkpoints: int
    head_seq: int | None
    head_hash: str | None
    first_broken_seq: int | None
    first_broken_record_id: int | None
    problem: str | None
    warnings: list[str]


class PurgeOut(BaseModel):
    id: int
    purged_at: datetime
    by: str | None
    count: int
    covered_to_seq: int | None
    kinds: dict


class VerificationStatusOut(BaseModel):
    last: VerificationOut | None  # null: never verified
    command: str
    purges: list[PurgeOut]


@api_route("/audit/verification", "GET", summary="The last verification of the audit chain and the retention purges",
           tag="audit", gate=sec.SECURITY_AUDIT, response=VerificationStatusOut)
def audit_verification():
    check(sec.SECURITY_AUDIT, "review", None)
    facts = verification_facts(get_session())
    last = facts["last"]
    return VerificationStatusOut(
        last=None if last is None else VerificationOut(
            started_at=as_utc(last.started_at), finished_at=as_utc(last.finished_at),
            age_seconds=int(facts["age"].total_seconds()),
            by=last.by_label, ok=last.ok, records=last.records, links=last.links, purged=last.purged or 0,
            checkpoints=last.checkpoints, head_seq=last.head_seq, head_hash=last.head_hash,
            first_broken_seq=last.first_broken_seq, first_broken_record_id=last.first_broken_record_id,
            problem=last.problem, warnings=list(last.warnings or [])),
        command=VERIFY_COMMAND,
        purges=[PurgeOut(id=p.id, purged_at=as_utc(p.purged_at), by=p.by_label, count=p.count,
                         covered_to_seq=p.covered_to_seq, kinds=p.kinds) for p in facts["purges"]])
