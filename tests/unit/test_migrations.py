"""The migrations: a fresh database upgraded to head has exactly the models' schema; it goes down to
base and up again (from every revision); the append-only triggers of audit_records survive migration
0003, which adds a column to that table, both ways. On SQLite and on PostgreSQL (DATABASE_URL).

"The models' schema" is checked twice: with Alembic's own comparison (compare_metadata, what
autogenerate would write), and against a second database built by Base.metadata.create_all, reflected
the same way, so that what compare_metadata does not look at (the predicates of partial indexes, CHECK
constraints, constraint names) must match too, as normalised by the same server."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from audit.models import AuditRecord
from db import Base, import_all_models
from migrations.runner import alembic_config, upgrade
from tests.unit.mandates.isolated_db import isolated_engine

import_all_models()

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
TRIGGERS = {"sqlite": {"audit_records_no_update", "audit_records_no_delete"},
            "postgresql": {"audit_records_append_only"}}


@pytest.fixture
def fresh(database_url, tmp_path):
    with isolated_engine(database_url, tmp_path, "migrations", migrate=False) as engine:
        yield engine


@pytest.fixture
def reference(database_url, tmp_path):
    """The schema the models create, without any migration."""
    with isolated_engine(database_url, tmp_path, "reference", migrate=False) as engine:
        Base.metadata.create_all(engine)
        yield engine


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def _inline_foreign_key_names(connection, table: str) -> dict[str, str]:
    """SQLite: names of foreign keys declared on the column itself ("col INTEGER CONSTRAINT name
    REFERENCES t (id)", the only form ALTER TABLE ADD COLUMN accepts). SQLAlchemy's SQLite reflection
    reads names only from table-level "CONSTRAINT name FOREIGN KEY" clauses and reports these as None:
    a reflection artefact, so the name is read from the table's SQL instead."""
    sql = connection.scalar(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table})
    return {column: name for column, name in re.findall(
        r'"?(\w+)"?\s+\w+(?:\(\d+\))?\s+CONSTRAINT\s+"?(\w+)"?\s+REFERENCES', sql or "", re.IGNORECASE)}


def _where(options: dict) -> str | None:
    where = options.get("sqlite_where", options.get("postgresql_where"))
    return None if where is None else " ".join(str(where).split())


def structure(engine: Engine) -> dict:
    """Every table as the database reports it: columns, keys, indexes (with their predicate), checks."""
    with engine.connect() as connection:
        inspector = inspect(connection)
        result = {}
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            inline = _inline_foreign_key_names(connection, table) if engine.dialect.name == "sqlite" else {}
            pk = inspector.get_pk_constraint(table)
            result[table] = {
                # By name: a column added by a later migration comes last (ADD COLUMN appends), and
                # nothing reads columns by position.
                "columns": sorted((c["name"], str(c["type"]), c["nullable"], c.get("default"))
                                  for c in inspector.get_columns(table)),
                "primary key": (pk["name"], tuple(pk["constrained_columns"])),
                "foreign keys": sorted(
                    ((fk["name"] or inline.get(fk["constrained_columns"][0]), tuple(fk["constrained_columns"]),
                      fk["referred_table"], tuple(fk["referred_columns"]))
                     for fk in inspector.get_foreign_keys(table)), key=repr),
                "indexes": sorted(((ix["name"], bool(ix["unique"]), tuple(ix["column_names"]),
                                    _where(ix.get("dialect_options", {})))
                                   for ix in inspector.get_indexes(table)), key=repr),
                "unique constraints": sorted(((uq["name"], tuple(uq["column_names"]))
                                              for uq in inspector.get_unique_constraints(table)), key=repr),
                "checks": sorted(((ck["name"], " ".join(ck["sqltext"].split()))
                                  for ck in inspector.get_check_constraints(table)), key=repr),
            }
        return result


def assert_schema_is_the_models(engine: Engine, reference: Engine) -> None:
    assert current_revision(engine) == HEAD
    assert differences(engine) == []
    migrated, expected = structure(engine), structure(reference)
    assert set(migrated) == set(expected) == {table.name for table in Base.metadata.sorted_tables}
    for table in expected:
        assert migrated[table] == expected[table], table


def triggers(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return set(connection.scalars(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_records'")))
        return set(connection.scalars(text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_records'::regclass AND NOT tgisinternal")))


def assert_append_only(engine: Engine) -> None:
    """The database itself refuses to change or remove an audit record. (SQLite's triggers are per
    row: they need a row to refuse anything.)"""
    assert triggers(engine) == TRIGGERS[engine.dialect.name]
    if not audit_actions(engine):
        add_audit_record(engine, action="probe")
    statements = ["UPDATE audit_records SET reason = 'rewritten'", "DELETE FROM audit_records"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_records")
    for statement in statements:
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
            connection.rollback()


def add_audit_record(engine: Engine, **values) -> None:
    with engine.begin() as connection:
        connection.execute(insert(AuditRecord.__table__).values(
            occurred_at=datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc), outcome="success", **values))


def audit_actions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(AuditRecord.__table__.c.action).order_by(AuditRecord.__table__.c.id)))


def test_head_is_the_models_schema(fresh, reference):
    upgrade(fresh)
    assert_schema_is_the_models(fresh, reference)
    assert_append_only(fresh)


@pytest.mark.parametrize("target", ["0002", "0001", "base"])
def test_down_and_up_again(fresh, reference, target):
    upgrade(fresh)
    downgrade(fresh, target)
    assert current_revision(fresh) == (None if target == "base" else target)
    if target == "base":
        assert set(inspect(fresh).get_table_names()) <= {"alembic_version"}
        if fresh.dialect.name == "postgresql":  # the trigger function went with its migration
            with fresh.connect() as connection:
                assert connection.scalar(text(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'audit_records_append_only' "
                    "AND pronamespace = current_schema()::regnamespace")) == 0
    else:
        assert "mandates" not in inspect(fresh).get_table_names()
        assert_append_only(fresh)
    upgrade(fresh)
    assert_schema_is_the_models(fresh, reference)
    assert_append_only(fresh)


def test_the_append_only_triggers_survive_0003_both_ways(fresh):
    upgrade(fresh, "0002")
    add_audit_record(fresh, action="before.0003")
    assert_append_only(fresh)

    upgrade(fresh, "0003")
    assert "provider_enterprise_id" in {c["name"] for c in inspect(fresh).get_columns("audit_records")}
    assert_append_only(fresh)
    add_audit_record(fresh, action="after.0003", provider_enterprise_id=None)
    with fresh.connect() as connection:
        assert list(connection.execute(text(
            "SELECT action, provider_enterprise_id FROM audit_records ORDER BY id"))) == [
            ("before.0003", None), ("after.0003", None)]

    # Down again: on SQLite dropping the column copies the table; the triggers must come back with it.
    downgrade(fresh, "0002")
    assert "provider_enterprise_id" not in {c["name"] for c in inspect(fresh).get_columns("audit_records")}
    assert audit_actions(fresh) == ["before.0003", "after.0003"]
    assert_append_only(fresh)

    upgrade(fresh)
    assert audit_actions(fresh) == ["before.0003", "after.0003"]
    assert_append_only(fresh)


def test_the_provider_column_refers_to_enterprises(fresh):
    """The foreign key that 0003 adds to audit_records holds (on SQLite too, where it is inline)."""
    upgrade(fresh)
    with pytest.raises(DBAPIError):
        add_audit_record(fresh, action="dangling", provider_enterprise_id=987654)
    assert audit_actions(fresh) == []


def test_records_written_before_the_chain_are_linked_and_verify(fresh):
    """An installation with audit records before 0007 (the chain): 0012 links them, verify is intact;
    a record inserted around the chain afterwards is still reported."""
    from sqlalchemy.orm import Session

    from audit.chain import verify

    upgrade(fresh, "0006")
    add_audit_record(fresh, action="before.chain.1")
    with fresh.begin() as connection:
        connection.execute(insert(AuditRecord.__table__).values(
            occurred_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), action="before.chain.2",
            outcome="success", details={"before": None, "after": {"right": True}}, path=["a", "b"]))
    upgrade(fresh)
    with Session(fresh) as session:
        result = verify(session)
        assert result.ok, result.report()
        assert result.links == result.records == 2
    add_audit_record(fresh, action="around.the.chain")
    with Session(fresh) as session:
        result = verify(session)
        assert not result.ok and [p.kind for p in result.problems] == ["unlinked-record"]


def test_an_upgrade_keeps_rows_that_refer_to_a_table_the_migrations_rebuild(fresh):
    """SQLite rebuilds tables in batch migrations (0002 rebuilds enterprises); with rows referring to
    them the upgrade must still succeed and keep every row and reference."""
    upgrade(fresh, "0001")
    with fresh.begin() as connection:
        connection.execute(text(
            "INSERT INTO enterprises (id, kbo_number, name, street, postal_code, city, legal_form, created_at) "
            "VALUES (7, '0412345614', 'Bakkerij', 'Kerkstraat 1', '1000', 'Brussel', 'BV', '2026-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO persons (id, insz, first_name, last_name, created_at) "
            "VALUES (3, '85073003328', 'An', 'Peeters', '2026-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO links (enterprise_id, person_id, kind, start_date, created_at) "
            "VALUES (7, 3, 'zaakvoerder', '2026-01-01', '2026-01-01 00:00:00')"))
    upgrade(fresh)
    with fresh.connect() as connection:
        assert connection.execute(text("SELECT name, name_folded FROM enterprises WHERE id = 7")).one() == \
            ("Bakkerij", "bakkerij")
        assert connection.execute(text("SELECT enterprise_id, person_id FROM links")).all() == [(7, 3)]
