"""Exporting the review screen's filtered records as CSV or JSON Lines, streamed.

An export is planned in the request (`plan`): the filter, the scope the decision point granted, the
number of matching records and the highest record id at that moment (the *watermark*). Above the cap
(app config AUDIT_EXPORT_CAP) the export needs an explicit confirmation, else ConfirmationRequired
(a 422 naming the field `confirm`) and nothing is written. A planned export is audit-logged
(`record_export`, action "audit.export") in the request's transaction, which commits before the first
byte is sent; the rows are then read (`stream`) from a read-only connection of their own
(db.read_only_connection): on SQLite a deferred transaction, which takes no write lock however long
the client takes to download a million rows; on PostgreSQL a REPEATABLE READ READ ONLY transaction
and a server-side cursor (yield_per). The
stream only reads records up to the watermark, so it holds what was counted (exactly on SQLite, where
writers are serialised; on PostgreSQL a concurrent writer's record committed between the count and
the stream's snapshot may be added) and never the export's own audit record.

Columns (CSV header; the same keys in each JSON Lines object): id, occurred_at (ISO-8601, UTC, with a
Z), actor_person_id, actor_name, actor_label (the login name used), enterprise_id, enterprise_kbo,
enterprise_name, provider_id, provider_kbo, provider_name, application, action, outcome, reason, path,
details, ip, user_agent, request_id. Details pass through audit.queries.redact like on the screen; in CSV,
path and details are compact JSON.

Formula injection: a spreadsheet runs a cell that starts with = + - @ as a formula (and some skip a
leading tab or carriage return first). Every CSV cell that starts with one of these six characters gets
a leading apostrophe (OWASP's advice), which the spreadsheet shows as text. JSON Lines is left as stored.

Memory is constant: rows are fetched `yield_per` at a time and written out in chunks of `CHUNK_ROWS`.
No Flask here: the web layer and bench/audit.py (`write`) use the same functions.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Iterable, Iterator, Mapping, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from access.clock import as_utc
from access.errors import ValidationError
from access.security_officers import SECURITY_AUDIT
from access.validators import format_kbo
from audit import queries as q
from audit.models import AuditRecord
from audit.operations import RequestContext, record
from db import read_only_connection

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl"}
CHUNK_ROWS = 500
YIELD_PER = 1000
ACTION = "audit.export"

COLUMNS = ("id", "occurred_at", "actor_person_id", "actor_name", "actor_label", "enterprise_id", "enterprise_kbo",
           "enterprise_name", "provider_id", "provider_kbo", "provider_name", "application", "action", "outcome",
           "reason", "path", "details", "ip", "user_agent", "request_id")

# Characters that make a spreadsheet read a cell as a formula (or hide one behind a tab or CR).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ConfirmationRequired(ValidationError):
    """The export holds more records than the cap: it needs `confirm`."""

    code = "confirmation-required"

    def __init__(self, template: str, *, count: int, cap: int) -> None:
        super().__init__(template, "confirm", count=count, cap=cap)
        self.count, self.cap = count, cap


@dataclass(frozen=True)
class ExportPlan:
    """An export decided in the request: what to read, and how many records it holds."""

    flt: q.AuditFilter
    scope: q.AuditScope
    fmt: str
    rows: int
    last_id: int  # the watermark: the highest record id when the records were counted
    confirmed: bool
    cap: int


def parse_format(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    if value not in FORMATS:
        raise ValidationError("Choose the export format: csv or jsonl.", "format")
    return value


def parse_confirm(value: Any) -> bool:
    """`confirm` as given by a form or a query string: absent or empty is no."""
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            raise ValidationError("'confirm' may be given only once.", "confirm")
        value = value[0] if value else None
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
        return False
    raise ValidationError("'confirm' is true or false.", "confirm")


def _watermark(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(AuditRecord.id), 0)))


def count(session: Session, flt: q.AuditFilter, scope: q.AuditScope, *, last_id: int | None = None) -> int:
    """How many records in scope match the filter (up to the watermark, if given)."""
    stmt = q.build_query(flt, scope).order_by(None)
    if last_id is not None:
        stmt = stmt.where(AuditRecord.id <= last_id)
    return session.scalar(select(func.count()).select_from(stmt.with_only_columns(AuditRecord.id).subquery()))


def plan(session: Session, flt: q.AuditFilter, scope: q.AuditScope, fmt: str, *, cap: int,
         confirmed: bool) -> ExportPlan:
    """Count the records now; above `cap` without confirmation: ConfirmationRequired."""
    fmt = parse_format(fmt)
    last_id = _watermark(session)
    rows = count(session, flt, scope, last_id=last_id)
    if rows > cap and not confirmed:
        raise ConfirmationRequired("This export holds %(count)s records, more than the %(cap)s an export may hold "
                                   "without confirmation; confirm to export them all.", count=rows, cap=cap)
    return ExportPlan(flt, scope, fmt, rows, last_id, confirmed, cap)


def record_export(session: Session, ctx: RequestContext, export: ExportPlan) -> AuditRecord:
    """The export's own audit record (the alert rule on large exports reads `details`)."""
    return record(session, ctx, action=ACTION, outcome="success", enterprise_id=export.scope.enterprise_id,
                  application=SECURITY_AUDIT,
                  details={"format": export.fmt, "rows": export.rows, "filter": dict(export.flt.params),
                           "confirmed": export.confirmed, "cap": export.cap})


# --- the rows ---------------------------------------------------------------------------------------------


def _query(flt: q.AuditFilter, scope: q.AuditScope, last_id: int | None):
    stmt = q.build_query(flt, scope)
    stmt = stmt.with_only_columns(*stmt.selected_columns)  # plain rows: no ORM objects for a million records
    return stmt.where(AuditRecord.id <= last_id) if last_id is not None else stmt


def iter_records(session: Session, flt: q.AuditFilter, scope: q.AuditScope, *, last_id: int | None = None,
                 yield_per: int = YIELD_PER) -> Iterator[dict[str, Any]]:
    """Every matching record in scope as a dict of COLUMNS, newest first, fetched in batches."""
    result = session.execute(_query(flt, scope, last_id).execution_options(yield_per=yield_per))
    try:
        for row in result.mappings():
            yield to_dict(row)
    finally:
        result.close()


def _kbo(number: str | None) -> str | None:
    return format_kbo(number) if number else None


def to_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    occurred_at: datetime = as_utc(row["occurred_at"])
    return {
        "id": row["id"],
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_person_id": row["actor_person_id"],
        "actor_name": row["actor_name"],
        "actor_label": row["actor_label"],
        "enterprise_id": row["enterprise_id"],
        "enterprise_kbo": _kbo(row["enterprise_kbo"]),
        "enterprise_name": row["enterprise_name"],
        "provider_id": row["provider_enterprise_id"],
        "provider_kbo": _kbo(row["provider_kbo"]),
        "provider_name": row["provider_name"],
        "application": row["application"],
        "action": row["action"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "path": row["path"],
        "details": q.redact(row["details"]),
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "request_id": row["request_id"],
    }


# --- the formats ------------------------------------------------------------------------------------------


def safe_cell(value: Any) -> str:
    """A CSV cell: None is empty, lists and dicts are compact JSON, and text a spreadsheet would run as
    a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_chunks(records: Iterable[Mapping[str, Any]], *, chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """The header, then the records, as CSV text (RFC 4180: commas, CRLF) in chunks of `chunk_rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    pending = 1
    for item in records:
        writer.writerow([safe_cell(item[name]) for name in COLUMNS])
        pending += 1
        if pending >= chunk_rows:
            yield _take(buffer)
            pending = 0
    if pending:
        yield _take(buffer)


def jsonl_chunks(records: Iterable[Mapping[str, Any]], *, chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
    """One JSON object per line (keys in COLUMNS order), in chunks of `chunk_rows` lines."""
    buffer = io.StringIO()
    pending = 0
    for item in records:
        buffer.write(json.dumps({name: item[name] for name in COLUMNS}, ensure_ascii=False, default=str))
        buffer.write("\n")
        pending += 1
        if pending >= chunk_rows:
            yield _take(buffer)
            pending = 0
    if pending:
        yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def chunks(session: Session, flt: q.AuditFilter, scope: q.AuditScope, fmt: str, *, last_id: int | None = None,
           yield_per: int = YIELD_PER) -> Iterator[str]:
    records = iter_records(session, flt, scope, last_id=last_id, yield_per=yield_per)
    return csv_chunks(records) if parse_format(fmt) == "csv" else jsonl_chunks(records)


# --- streaming ----------------------------------------------------------------------------------------------


def read_only_session(engine: Engine) -> Session:
    """A session on a read-only connection of its own (db.read_only_connection); closing the session
    does not close that connection: use close_read_only_session."""
    return Session(bind=read_only_connection(engine), autoflush=False, expire_on_commit=False)


def close_read_only_session(session: Session) -> None:
    connection = session.get_bind()
    session.close()
    connection.close()


def stream(open_session, close_session, export: ExportPlan) -> Iterator[bytes]:
    """The export's bytes. The session is opened at the first chunk (after the request committed the
    export's audit record) and closed at the end, or when the generator is closed (client gone)."""
    session = open_session()
    try:
        for text in chunks(session, export.flt, export.scope, export.fmt, last_id=export.last_id):
            yield text.encode("utf-8")
    finally:
        close_session(session)


class Written(NamedTuple):
    rows: int
    bytes: int


def write(session: Session, flt: q.AuditFilter, scope: q.AuditScope, fmt: str, out: IO[bytes], *,
          yield_per: int = YIELD_PER) -> Written:
    """Write the whole export to a binary file (bench/audit.py, a command); returns the records and bytes
    written. No cap and no audit record: the caller is not a reviewer on the web."""
    rows = 0

    def counted(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal rows
        for item in records:
            rows += 1
            yield item

    records = counted(iter_records(session, flt, scope, yield_per=yield_per))
    size = 0
    for text in (csv_chunks(records) if parse_format(fmt) == "csv" else jsonl_chunks(records)):
        data = text.encode("utf-8")
        out.write(data)
        size += len(data)
    return Written(rows, size)
