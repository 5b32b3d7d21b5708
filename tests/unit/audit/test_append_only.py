"""Audit records are append-only: the ORM refuses to flush a change or a deletion, and the database
triggers refuse UPDATE and DELETE whatever the path (raw SQL, bulk statements). Operations write their
record in the transaction of the change."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from access import operations as ops
from audit.models import AuditRecord
from audit.operations import RequestContext, record
from tests.factories import audit_records, row_counts


@pytest.fixture
def entry(db_session, clock, ctx):
    written = record(db_session, ctx, action="test.action", outcome="success", reason="original",
                     details={"before": 1, "after": 2})
    db_session.flush()
    return written


def _stored(db_session, entry_id):
    return db_session.execute(text("SELECT reason, action FROM audit_records WHERE id = :id"),
                              {"id": entry_id}).one()


def test_record_stores_every_field_of_the_context(db_session, clock, factories):
    person = factories.Person()
    enterprise = factories.Enterprise()
    ctx = RequestContext(actor_person_id=person.id, actor_label="an.peeters", ip="192.0.2.7",
                         user_agent="Firefox", request_id="req-1")
    written = record(db_session, ctx, action="x.y", outcome="denied", enterprise_id=enterprise.id,
                     application="dmfa", reason="why", path=["a", "b"], details={"k": "v"})
    db_session.flush()
    db_session.expire(written)
    assert (written.occurred_at.replace(tzinfo=None), written.actor_person_id, written.actor_label, written.ip,
            written.user_agent, written.request_id) == (clock.now().replace(tzinfo=None), person.id, "an.peeters",
                                                        "192.0.2.7", "Firefox", "req-1")
    assert (written.enterprise_id, written.application, written.action, written.outcome, written.reason,
            written.path, written.details) == (enterprise.id, "dmfa", "x.y", "denied", "why", ["a", "b"],
                                               {"k": "v"})


def test_record_clips_values_that_come_from_outside(db_session, clock):
    ctx = RequestContext(actor_label="n" * 500, ip="i" * 100, user_agent="u" * 1000, request_id="r" * 100)
    written = record(db_session, ctx, action="x", outcome="failure", application="a" * 200)
    db_session.flush()
    assert (len(written.actor_label), len(written.ip), len(written.user_agent), len(written.request_id),
            len(written.application)) == (120, 45, 300, 64, 40)


# --- the ORM refuses ----------------------------------------------------------------------

def test_orm_refuses_to_flush_a_modified_record(db_session, entry):
    with pytest.raises(PermissionError, match="append-only"):
        with db_session.begin_nested():
            entry.reason = "rewritten"
            db_session.flush()
    assert _stored(db_session, entry.id).reason == "original"


def test_orm_refuses_to_flush_a_deleted_record(db_session, entry):
    entry_id = entry.id
    with pytest.raises(PermissionError, match="append-only"):
        with db_session.begin_nested():
            db_session.delete(entry)
            db_session.flush()
    assert _stored(db_session, entry_id).reason == "original"


def test_orm_still_appends(db_session, entry, ctx):
    before = row_counts(db_session)["audit_records"]
    record(db_session, ctx, action="test.other", outcome="success")
    db_session.flush()
    assert row_counts(db_session)["audit_records"] == before + 1


# --- the database refuses ------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE audit_records SET reason = 'rewritten'",
    "UPDATE audit_records SET reason = 'rewritten' WHERE id = :id",
    "DELETE FROM audit_records",
    "DELETE FROM audit_records WHERE id = :id",
])
def test_database_refuses_update_and_delete_in_raw_sql(db_session, entry, statement):
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(text(statement), {"id": entry.id})
    assert _stored(db_session, entry.id).reason == "original"


def test_database_refuses_bulk_orm_statements_that_bypass_the_flush(db_session, entry):
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(update(AuditRecord).where(AuditRecord.id == entry.id).values(reason="rewritten")
                               .execution_options(synchronize_session=False))
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(delete(AuditRecord).execution_options(synchronize_session=False))
    assert _stored(db_session, entry.id).reason == "original"


def test_database_refuses_an_update_that_changes_nothing(db_session, entry):
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(text("UPDATE audit_records SET reason = reason WHERE id = :id"), {"id": entry.id})


def test_postgresql_refuses_truncate(db_session, entry, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(text("TRUNCATE audit_records CASCADE"))
    assert _stored(db_session, entry.id).reason == "original"


def test_the_triggers_are_installed(db_session, engine):
    if engine.dialect.name == "sqlite":
        names = set(db_session.scalars(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_records'")))
        assert names == {"audit_records_no_update", "audit_records_no_delete"}
    else:
        names = set(db_session.scalars(text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_records'::regclass AND NOT tgisinternal")))
        assert names == {"audit_records_append_only"}


# --- same transaction ------------------------------------------------------------------------

def test_an_operation_and_its_audit_record_commit_or_roll_back_together(db_session, clock, ctx):
    before = row_counts(db_session)
    with db_session.begin_nested() as work:
        enterprise = ops.register_enterprise(db_session, kbo="0123.456.749", name="Garage", street="Meir 1",
                                             postal_code="2000", city="Antwerpen", legal_form="BV", by=ctx)
        assert [r.enterprise_id for r in audit_records(db_session, "enterprise.register")] == [enterprise.id]
        work.rollback()
    assert row_counts(db_session) == before

    with db_session.begin_nested():
        enterprise = ops.register_enterprise(db_session, kbo="0123.456.749", name="Garage", street="Meir 1",
                                             postal_code="2000", city="Antwerpen", legal_form="BV", by=ctx)
    after = row_counts(db_session)
    assert after["enterprises"] == before["enterprises"] + 1
    assert after["audit_records"] == before["audit_records"] + 1
