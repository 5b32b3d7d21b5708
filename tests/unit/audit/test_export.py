"""The export of the review screen's records (audit/export.py): CSV and JSON Lines content with names next
to ids, the formula-injection guard, redaction, the scope (another enterprise's records are never in an
export), the cap and the watermark, the export's audit record, streaming in chunks, and the stream's
read-only connection (on SQLite it leaves the write lock free while half read)."""
from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from access.errors import ValidationError
from audit import export
from audit import queries as q
from audit.models import AuditRecord
from audit.operations import RequestContext
from tests.unit.audit.chain_fixtures import session_with, settings
from tests.unit.mandates.isolated_db import backend, isolated_engine

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)


def add(session, **values) -> AuditRecord:
    entry = AuditRecord(**{"occurred_at": BASE, "action": "test.action", "outcome": "success", **values})
    session.add(entry)
    session.flush()
    return entry


@pytest.fixture
def trail(db_session, factories):
    bakery = factories.Employer(name="Bakkerij De Gouden Korst")
    garage = factories.Employer(name="Garage Lambrecht")
    provider = factories.Enterprise(name="Sociaal Secretariaat Zuiderpoort")
    an = factories.Person(first_name="An", last_name="Peeters")
    tom = factories.Person(first_name="Tom", last_name="Claes")
    records = [
        add(db_session, occurred_at=BASE, enterprise_id=bakery.id, actor_person_id=an.id, actor_label="an.peeters",
            application="dmfa", action="right.grant", reason="granted", path=["local administrator"],
            details={"before": {"right": False}, "after": {"right": True}, "token": "s3cr3t"}, ip="192.0.2.7",
            user_agent="Firefox", request_id="req-1"),
        add(db_session, occurred_at=BASE + timedelta(minutes=1, microseconds=5), enterprise_id=bakery.id,
            provider_enterprise_id=provider.id, actor_person_id=tom.id, action="decision:open", outcome="allowed",
            reason="=HYPERLINK(\"http://evil.invalid\")", user_agent="@SUM(A1)", actor_label="-2+3",
            details={"note": "+31 6"}),
        add(db_session, occurred_at=BASE + timedelta(minutes=2), enterprise_id=garage.id, actor_person_id=an.id,
            action="right.grant", reason="Garage Lambrecht's own", ip="\tcmd"),
    ]
    return bakery, garage, provider, an, tom, records


def csv_of(session, flt, scope) -> list[dict[str, str]]:
    body = "".join(export.chunks(session, flt, scope, "csv"))
    return list(csv.DictReader(io.StringIO(body, newline="")))


def jsonl_of(session, flt, scope) -> list[dict]:
    body = "".join(export.chunks(session, flt, scope, "jsonl"))
    assert body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def test_csv_has_a_header_and_names_next_to_ids(db_session, trail):
    bakery, garage, provider, an, tom, records = trail
    rows = csv_of(db_session, q.AuditFilter(), q.AuditScope.of_enterprise(bakery.id))
    assert list(rows[0]) == list(export.COLUMNS)
    assert [int(r["id"]) for r in rows] == [records[1].id, records[0].id]  # newest first
    via, grant = rows
    assert (via["actor_person_id"], via["actor_name"]) == (str(tom.id), "Tom Claes")
    assert (via["enterprise_id"], via["enterprise_kbo"], via["enterprise_name"]) == (
        str(bakery.id), bakery.kbo_display, "Bakkerij De Gouden Korst")
    assert (via["provider_id"], via["provider_kbo"], via["provider_name"]) == (
        str(provider.id), provider.kbo_display, "Sociaal Secretariaat Zuiderpoort")
    assert via["occurred_at"] == "2026-11-02T08:01:00.000005Z"
    assert (grant["application"], grant["action"], grant["outcome"], grant["ip"], grant["user_agent"],
            grant["request_id"]) == ("dmfa", "right.grant", "success", "192.0.2.7", "Firefox", "req-1")
    assert json.loads(grant["path"]) == ["local administrator"]
    assert (grant["provider_id"], grant["provider_name"]) == ("", "")  # none: empty cells


def test_details_are_redacted_in_both_formats(db_session, trail):
    bakery, *_ = trail
    scope = q.AuditScope.of_enterprise(bakery.id)
    flt = q.parse_filter({"action": "right.grant"})
    [row] = csv_of(db_session, flt, scope)
    assert json.loads(row["details"]) == {"before": {"right": False}, "after": {"right": True},
                                          "token": q.REDACTED}
    [line] = jsonl_of(db_session, flt, scope)
    assert line["details"]["token"] == q.REDACTED and "s3cr3t" not in json.dumps(line)


def test_jsonl_has_one_object_per_record_with_the_same_fields(db_session, trail):
    bakery, garage, provider, an, tom, records = trail
    lines = jsonl_of(db_session, q.AuditFilter(), q.AuditScope.of_enterprise(bakery.id))
    assert [list(line) for line in lines] == [list(export.COLUMNS)] * 2
    via, grant = lines
    assert (via["id"], via["provider_id"], via["provider_kbo"], via["actor_name"]) == (
        records[1].id, provider.id, provider.kbo_display, "Tom Claes")
    assert grant["path"] == ["local administrator"] and grant["details"]["after"] == {"right": True}
    # JSON is not a spreadsheet: the text stays as stored
    assert via["reason"] == "=HYPERLINK(\"http://evil.invalid\")" and via["actor_label"] == "-2+3"


def test_csv_cells_a_spreadsheet_would_run_get_an_apostrophe(db_session, trail):
    bakery, *_ = trail
    rows = csv_of(db_session, q.AuditFilter(), q.AuditScope.of_institution())
    by_reason = {r["action"] + r["reason"]: r for r in rows}
    via = next(r for r in rows if r["action"] == "decision:open" and r["user_agent"])
    assert via["reason"] == "'=HYPERLINK(\"http://evil.invalid\")"
    assert via["user_agent"] == "'@SUM(A1)" and via["actor_label"] == "'-2+3"
    assert json.loads(via["details"]) == {"note": "+31 6"}  # JSON starts with {: nothing to guard
    garage = by_reason["right.grantGarage Lambrecht's own"]
    assert garage["ip"] == "'\tcmd"
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert export.safe_cell(value) == "'" + value
    for value in ("1", "a=b", "", None, "'quoted"):
        assert export.safe_cell(value) == ("" if value is None else value)


def test_another_enterprises_records_are_never_in_the_export(db_session, trail):
    bakery, garage, *_ = trail
    scope = q.AuditScope.of_enterprise(bakery.id)
    for fmt in ("csv", "jsonl"):
        body = "".join(export.chunks(db_session, q.AuditFilter(), scope, fmt))
        assert "Garage Lambrecht" not in body and "Bakkerij De Gouden Korst" in body
        # naming the other enterprise in the filter does not widen the scope
        other = q.parse_filter({"enterprise": str(garage.id)})
        assert "Garage" not in "".join(export.chunks(db_session, other, scope, fmt))
    assert export.count(db_session, q.parse_filter({"enterprise": str(garage.id)}), scope) == 0
    assert {int(r["enterprise_id"]) for r in csv_of(db_session, q.AuditFilter(), scope)} == {bakery.id}


def test_the_cap_needs_a_confirmation_and_the_plan_counts_up_to_its_watermark(db_session, trail):
    bakery, *_ = trail
    scope = q.AuditScope.of_enterprise(bakery.id)
    with pytest.raises(export.ConfirmationRequired) as caught:
        export.plan(db_session, q.AuditFilter(), scope, "csv", cap=1, confirmed=False)
    assert (caught.value.field, caught.value.count, caught.value.cap, caught.value.status) == ("confirm", 2, 1, 422)
    assert "2" in caught.value.message and "1" in caught.value.message
    assert export.plan(db_session, q.AuditFilter(), scope, "csv", cap=2, confirmed=False).rows == 2
    planned = export.plan(db_session, q.AuditFilter(), scope, "jsonl", cap=1, confirmed=True)
    assert (planned.rows, planned.fmt, planned.confirmed) == (2, "jsonl", True)
    later = add(db_session, enterprise_id=bakery.id, occurred_at=BASE + timedelta(hours=1))
    assert later.id > planned.last_id
    streamed = b"".join(export.stream(lambda: db_session, lambda _: None, planned)).decode()
    assert [json.loads(line)["id"] for line in streamed.splitlines()] == [r.id for r in
                                                                          reversed(trail[-1][:2])]


def test_the_export_record_keeps_the_contract(db_session, trail):
    bakery, *_ = trail
    flt = q.parse_filter({"action": "right.grant", "outcome": "success"})
    planned = export.plan(db_session, flt, q.AuditScope.of_enterprise(bakery.id), "csv", cap=10, confirmed=False)
    ctx = RequestContext(actor_person_id=None, actor_label="officer", ip="192.0.2.9")
    entry = export.record_export(db_session, ctx, planned)
    db_session.flush()
    assert (entry.action, entry.outcome, entry.enterprise_id, entry.application) == (
        "audit.export", "success", bakery.id, "beveiligingsaudit")
    assert entry.details == {"format": "csv", "rows": 1, "filter": {"action": "right.grant", "outcome": "success"},
                             "confirmed": False, "cap": 10}
    institution = export.plan(db_session, q.AuditFilter(), q.AuditScope.of_institution(), "jsonl", cap=10,
                              confirmed=True)
    assert export.record_export(db_session, ctx, institution).enterprise_id is None


@pytest.mark.parametrize("value, expected", [(None, False), ([], False), ([""], False), (["true"], True),
                                             (["1"], True), ("on", True), (["false"], False), (["no"], False)])
def test_confirm_is_a_yes_or_no(value, expected):
    assert export.parse_confirm(value) is expected


@pytest.mark.parametrize("call, field_name", [
    (lambda: export.parse_confirm(["maybe"]), "confirm"),
    (lambda: export.parse_confirm(["true", "true"]), "confirm"),
    (lambda: export.parse_format("xlsx"), "format"),
    (lambda: export.parse_format(None), "format"),
    (lambda: export.parse_format(["csv", "jsonl"]), "format"),
])
def test_bad_controls_are_refused_naming_the_field(call, field_name):
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field_name


def _endless():
    for n in itertools.count(1):
        yield {name: None for name in export.COLUMNS} | {"id": n, "action": "x", "outcome": "success"}


@pytest.mark.parametrize("formatter", [export.csv_chunks, export.jsonl_chunks])
def test_the_formats_stream_in_chunks_without_reading_everything(formatter):
    """An endless source: a chunk comes out anyway, so nothing is gathered before writing."""
    chunks = formatter(_endless(), chunk_rows=100)
    first, second = next(chunks), next(chunks)
    assert 95 <= first.count("\n") <= 101 and second.count("\n") == 100
    chunks.close()


def test_write_sends_the_whole_export_to_a_file(db_session, trail):
    bakery, *_ = trail
    out = io.BytesIO()
    written = export.write(db_session, q.AuditFilter(), q.AuditScope.of_enterprise(bakery.id), "csv", out,
                           yield_per=1)
    assert written == (2, len(out.getvalue())) and out.getvalue().decode().count("\r\n") == 3  # header, 2 rows


# --- the stream's own read-only connection -------------------------------------------------------------------


@pytest.fixture
def committed_trail(database_url, tmp_path):
    """A database of its own with 2,000 committed records (the stream's connection sees committed rows)."""
    with isolated_engine(database_url, tmp_path, "export") as engine:
        with session_with(engine, settings(None)) as session:
            session.add_all([AuditRecord(occurred_at=BASE + timedelta(seconds=n), action="test.action",
                                         outcome="success", reason=f"record {n}") for n in range(2000)])
            session.commit()
        yield engine


def _half_read(engine):
    planned = export.ExportPlan(q.AuditFilter(), q.AuditScope.of_institution(), "jsonl", 2000, 2000, True, 10)
    stream = export.stream(lambda: export.read_only_session(engine), export.close_read_only_session, planned)
    return stream, next(stream) + next(stream)  # 1,000 of 2,000 records read, the cursor open


def test_a_half_read_stream_leaves_writers_free(committed_trail):
    engine = committed_trail
    stream, first = _half_read(engine)
    try:
        with session_with(engine, settings(None)) as writer:  # BEGIN IMMEDIATE on SQLite
            writer.add(AuditRecord(occurred_at=BASE, action="test.during_export", outcome="success"))
            writer.commit()
        rest = b"".join(stream)
    finally:
        stream.close()
    lines = (first + rest).decode().splitlines()
    assert len(lines) == 2000 and b"test.during_export" not in first + rest  # a snapshot, up to its watermark
    with session_with(engine, settings(None)) as reader:
        assert reader.scalar(select(AuditRecord.id).where(AuditRecord.action == "test.during_export"))


def _try_write_lock(path: str) -> bool:
    """Can a writer take SQLite's write lock right now (no waiting)?"""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        probe.close()


def test_on_sqlite_the_stream_does_not_hold_the_write_lock(committed_trail, database_url):
    if backend(database_url) != "sqlite":
        pytest.skip("SQLite's write lock")
    engine = committed_trail
    path = engine.url.database
    with session_with(engine, settings(None)) as holder:  # the probe sees a lock that is held
        holder.execute(select(AuditRecord.id).limit(1))
        assert _try_write_lock(path) is False
    stream, _ = _half_read(engine)
    try:
        assert _try_write_lock(path) is True
    finally:
        stream.close()


def test_on_postgresql_the_stream_reads_in_a_read_only_snapshot(committed_trail, database_url):
    if backend(database_url) != "postgresql":
        pytest.skip("PostgreSQL's transaction characteristics")
    engine = committed_trail
    session = export.read_only_session(engine)
    try:
        assert session.scalar(text("SHOW transaction_read_only")) == "on"
        assert session.scalar(text("SHOW transaction_isolation")) == "repeatable read"
    finally:
        export.close_read_only_session(session)
    with engine.connect() as again:  # the pooled connection is back to its defaults
        assert again.scalar(text("SHOW transaction_read_only")) == "off"
        assert again.scalar(text("SHOW transaction_isolation")) == "read committed"
