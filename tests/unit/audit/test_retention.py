"""Retention: the purge removes expired records covered by a signed checkpoint, keeps their links,
and the chain still verifies; every other removal stays refused by the database and reported by
verify. Each test has a committed database of its own (the purge commits)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from access.clock import FrozenClock, using_clock
from audit.chain import verify
from audit.models import AuditRecord, ChainLink, Purge, PurgedRecord
from audit.operations import CLI_CONTEXT, record
from audit.retention import RetentionConfigError, load_policy, parse_policy, purge
from tests.factories import EnterpriseFactory, PersonFactory, bind_session
from tests.unit.audit.chain_fixtures import session_with, settings, tampering, write_records
from tests.unit.mandates.isolated_db import isolated_engine

OLD = datetime(2019, 3, 1, 9, 0, tzinfo=timezone.utc)
RECENT = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
EVERY = 100
FIVE_YEARS = parse_policy({"default": {"years": 5}})
records, links, tombstones = AuditRecord.__table__, ChainLink.__table__, PurgedRecord.__table__


class Trail:
    """A committed chain: 150 old records (a checkpoint covers 1..100; 101..150 are not signed yet)."""

    def __init__(self, engine, key):
        self.engine, self.key = engine, key
        with self.session() as session, bind_session(session):
            self.people = [PersonFactory().id for _ in range(2)]
            self.enterprises = [EnterpriseFactory().id for _ in range(2)]
            session.commit()
        self.write(150, OLD)

    def session(self):
        return session_with(self.engine, settings(self.key, EVERY))

    def write(self, count: int, start: datetime, seed: int = 5) -> None:
        with self.session() as session:
            write_records(session, count, person_ids=self.people, enterprise_ids=self.enterprises, start=start,
                          seed=seed)

    def purge(self, policy=FIVE_YEARS, dry_run: bool = False, now: datetime = NOW):
        with self.session() as session, using_clock(FrozenClock(now)):
            result = purge(session, policy, by=CLI_CONTEXT, dry_run=dry_run, now=now)
            session.commit()
        return result

    def verify(self):
        with self.session() as session:
            return verify(session, public_keys=[self.key.public_key()])

    def ids_by_seq(self, *seqs: int) -> list[int | None]:
        with self.engine.connect() as connection:
            found = dict(connection.execute(select(links.c.seq, records.c.id).select_from(
                links.outerjoin(records, records.c.id == links.c.record_id)).where(links.c.seq.in_(seqs))).all())
        return [found[seq] for seq in seqs]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {table: connection.scalar(text(f"SELECT count(*) FROM {table}"))
                    for table in ("audit_records", "audit_chain", "audit_checkpoints", "audit_purges",
                                  "audit_purged_records", "audit_record_subjects")}


@pytest.fixture
def trail(database_url, tmp_path):
    with isolated_engine(database_url, tmp_path, "retention") as engine:
        yield Trail(engine, Ed25519PrivateKey.generate())


# --- the purge -------------------------------------------------------------------------------------

def test_expired_records_under_a_checkpoint_are_removed_and_the_chain_still_verifies(trail):
    result = trail.purge()
    assert (result.count, result.covered_to_seq) == (100, 100)
    # 1..100 are gone (their links stay); 101..150 are expired too, but no checkpoint covers them yet.
    assert trail.ids_by_seq(1, 50, 100) == [None, None, None]
    assert None not in trail.ids_by_seq(101, 150)
    counts = trail.counts()
    assert (counts["audit_chain"], counts["audit_purged_records"], counts["audit_purges"]) == (151, 100, 1)
    verified = trail.verify()
    assert verified.ok, verified.report()
    assert verified.purged == 100
    assert "records purged by retention: 100" in verified.report()


def test_records_within_their_period_are_kept_and_a_later_purge_takes_the_newly_covered_ones(trail):
    trail.purge()
    trail.write(60, RECENT, seed=6)  # seq 151 (the first purge's audit record) .. 211; checkpoint 101..200
    result = trail.purge()
    assert (result.count, result.covered_to_seq) == (50, 200)
    assert None not in trail.ids_by_seq(151, 152, 200, 211)
    verified = trail.verify()
    assert verified.ok, verified.report()
    assert verified.purged == 150


def test_each_kind_has_its_own_period_and_the_longest_prefix_wins(trail):
    policy = parse_policy({"default": {"years": 50}, "kind": [
        {"name": "decisions", "prefix": "decision", "days": 30},
        {"name": "grants", "prefix": "right.", "years": 40},
        {"name": "grant", "prefix": "right.grant", "days": 10},
    ]})
    with trail.engine.connect() as connection:
        kept_actions = dict(connection.execute(select(links.c.seq, records.c.action).join(
            records, records.c.id == links.c.record_id).where(links.c.seq <= EVERY)).all())
    result = trail.purge(policy)
    expected = {seq for seq, action in kept_actions.items() if action in ("decision", "right.grant")}
    assert {entry.kind.name: entry.count for entry in result.kinds} == {
        "decisions": sum(1 for s in expected if kept_actions[s] == "decision"),
        "grants": 0, "grant": sum(1 for s in expected if kept_actions[s] == "right.grant"), "default": 0}
    with trail.engine.connect() as connection:
        purged = set(connection.scalars(select(tombstones.c.seq)))
    assert purged == expected and expected
    assert trail.verify().ok


def test_the_purge_is_recorded_and_audited(trail):
    result = trail.purge()
    with trail.session() as session:
        row = session.get(Purge, result.purge_id)
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "audit.purge")).one()
    assert (row.count, row.seq_from, row.seq_to, row.covered_to_seq, row.by_label) == (100, 1, 100, 100, "cli")
    assert row.kinds["default"]["count"] == 100 and row.kinds["default"]["retention"] == "5 years"
    assert audit.details["purge_id"] == result.purge_id and audit.details["count"] == 100


def test_the_purge_removes_the_subject_index_rows_of_its_records(trail):
    with trail.session() as session, using_clock(FrozenClock(OLD)):
        about = record(session, CLI_CONTEXT, action="right.grant", outcome="success",
                       subject_person_ids=[trail.people[0]])
        session.commit()
        about_id = about.id  # seq 151
    trail.write(50, OLD, seed=7)  # up to seq 201: the checkpoint 101..200 covers it
    assert trail.counts()["audit_record_subjects"] == 1
    with trail.session() as session:
        kept = record(session, CLI_CONTEXT, action="right.grant", outcome="success",
                      subject_person_ids=[trail.people[1]])  # recent: kept
        session.commit()
    trail.purge()
    assert trail.ids_by_seq(151) == [None]
    with trail.engine.connect() as connection:
        assert connection.execute(text("SELECT record_id FROM audit_record_subjects")).scalars().all() == [kept.id]
    assert about_id != kept.id and trail.verify().ok


def test_without_a_checkpoint_nothing_is_purged(database_url, tmp_path):
    with isolated_engine(database_url, tmp_path, "unsigned") as engine:
        trail = Trail.__new__(Trail)
        trail.engine, trail.key = engine, None
        with session_with(engine, settings(None)) as session, bind_session(session):
            people = [PersonFactory().id]
            session.commit()
            write_records(session, 20, person_ids=people, enterprise_ids=[], start=OLD)
            result = purge(session, FIVE_YEARS, by=CLI_CONTEXT, dry_run=True, now=NOW)
        assert (result.count, result.covered_to_seq) == (0, None)
        assert "no signed checkpoint yet" in "\n".join(result.report())


def test_a_dry_run_writes_nothing(trail):
    before = trail.counts()
    result = trail.purge(dry_run=True)
    assert (result.count, result.purge_id) == (100, None)
    assert trail.counts() == before


# --- tampering next to purged records, and removals outside the purge ---------------------------------

def test_verify_still_detects_an_edit_next_to_purged_records(trail):
    trail.purge()
    victim = trail.ids_by_seq(101)[0]
    with tampering(trail.engine) as connection:
        connection.execute(update(records).where(records.c.id == victim).values(reason="rewritten"))
        with session_with(connection, settings(None)) as session:
            result = verify(session, public_keys=[trail.key.public_key()])
    assert not result.ok
    assert (result.first_broken.kind, result.first_broken.seq) == ("edited-record", 101)


def test_verify_detects_an_edited_link_of_a_purged_record(trail):
    trail.purge()
    with tampering(trail.engine) as connection:
        connection.execute(update(links).where(links.c.seq == 50).values(record_hash="f" * 64))
        with session_with(connection, settings(None)) as session:
            result = verify(session, public_keys=[trail.key.public_key()])
    assert not result.ok
    assert {problem.kind for problem in result.problems} >= {"edited-link", "checkpoint-root"}
    assert result.first_broken.seq in (1, 51)  # the checkpoint's interval, or the next link


def test_a_record_deleted_outside_the_purge_is_reported_even_among_purged_ones(trail):
    trail.purge()
    victim = trail.ids_by_seq(120)[0]
    with tampering(trail.engine) as connection:
        connection.execute(records.delete().where(records.c.id == victim))
        with session_with(connection, settings(None)) as session:
            result = verify(session, public_keys=[trail.key.public_key()])
    assert not result.ok
    assert (result.first_broken.kind, result.first_broken.seq, result.first_broken.record_id) == (
        "missing-record", 120, victim)
    assert result.purged == 100


def test_a_tombstone_added_to_excuse_a_deletion_is_reported(trail):
    purge_id = trail.purge().purge_id
    victim = trail.ids_by_seq(120)[0]
    with tampering(trail.engine) as connection:
        connection.execute(insert(tombstones).values(record_id=victim, seq=120, purge_id=purge_id))
        connection.execute(records.delete().where(records.c.id == victim))
        with session_with(connection, settings(None)) as session:
            result = verify(session, public_keys=[trail.key.public_key()])
    assert not result.ok
    assert [problem.kind for problem in result.problems] == ["purge-mismatch", "purge-out-of-bounds"]


def test_a_forged_purge_with_its_tombstone_is_reported(trail):
    """With database write access and the triggers left in place, a purge row plus a tombstone let a
    recent record (not expired, no checkpoint over it) be deleted; verify still reports it: no chained
    audit.purge record announces that purge, and the tombstone lies above any checkpoint."""
    assert trail.verify().ok
    victim = trail.ids_by_seq(140)[0]
    with trail.engine.begin() as connection:
        purge_id = connection.execute(insert(Purge.__table__).values(
            purged_at=NOW, count=1, kinds={}, seq_from=140, seq_to=140, covered_to_seq=None)).inserted_primary_key[0]
        connection.execute(insert(tombstones).values(record_id=victim, seq=140, purge_id=purge_id))
        if connection.dialect.name == "postgresql":  # the forger names his purge, as the purge does
            connection.execute(text("SELECT set_config('portal.audit_purge', :id, true)"), {"id": str(purge_id)})
        connection.execute(records.delete().where(records.c.id == victim))
    result = trail.verify()
    assert not result.ok
    assert {problem.kind for problem in result.problems} == {"purge-unannounced", "purge-out-of-bounds"}


def test_the_purges_own_records_are_never_purged(trail):
    first = trail.purge()
    trail.write(120, RECENT, seed=7)  # the first purge's record (seq 151) is now under a checkpoint
    later = NOW.replace(year=NOW.year + 10)
    trail.purge(now=later)
    with trail.engine.connect() as connection:
        kept = connection.execute(select(records.c.details).where(records.c.action == "audit.purge")).scalars().all()
    assert first.purge_id in {details["purge_id"] for details in kept}
    verified = trail.verify()
    assert verified.ok, verified.report()


def test_the_database_refuses_a_delete_outside_the_purge(trail):
    with trail.session() as session:
        record(session, CLI_CONTEXT, action="right.grant", outcome="success", subject_person_ids=[trail.people[0]])
        session.commit()
    trail.purge()
    victim = trail.ids_by_seq(120)[0]
    with trail.engine.connect() as connection:
        for statement in ("DELETE FROM audit_records WHERE id = :id", "DELETE FROM audit_records",
                          "UPDATE audit_records SET reason = 'x' WHERE id = :id",
                          "DELETE FROM audit_record_subjects", "UPDATE audit_record_subjects SET person_id = 1",
                          "UPDATE audit_purges SET count = 0",
                          "DELETE FROM audit_purged_records", "DELETE FROM audit_purges"):
            transaction = connection.begin()
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement), {"id": victim})
            transaction.rollback()
    assert trail.ids_by_seq(120) == [victim]


def test_postgresql_refuses_a_delete_under_an_unknown_purge_or_an_update_under_a_real_one(trail):
    if trail.engine.dialect.name != "postgresql":
        pytest.skip("the purge's transaction setting exists on PostgreSQL only")
    purge_id = trail.purge().purge_id
    victim = trail.ids_by_seq(120)[0]
    with trail.engine.connect() as connection:
        for value, statement in (("999999", "DELETE FROM audit_records WHERE id = :id"),
                                 ("x; DROP", "DELETE FROM audit_records WHERE id = :id"),
                                 (str(purge_id), "UPDATE audit_records SET reason = 'x' WHERE id = :id"),
                                 (str(purge_id), "TRUNCATE audit_records CASCADE")):
            transaction = connection.begin()
            connection.execute(text("SELECT set_config('portal.audit_purge', :v, true)"), {"v": value})
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement), {"id": victim})
            transaction.rollback()


def test_the_purge_clears_its_authorisation_before_the_transaction_goes_on(trail):
    with trail.session() as session, using_clock(FrozenClock(NOW)):
        purge(session, FIVE_YEARS, by=CLI_CONTEXT, now=NOW)
        survivor = session.scalar(select(func.max(AuditRecord.id)))
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": survivor})
        session.rollback()


# --- the configuration -----------------------------------------------------------------------------------

def test_the_shipped_configuration_loads_with_five_years_by_default():
    policy = load_policy()
    assert str(policy.kind_of("anything.else").period) == "5 years"
    assert policy.kind_of("decision:dmfa").name == "decisions"


@pytest.mark.parametrize("data, message", [
    ({}, "a \\[default\\] table"),
    ({"default": {"years": 5, "days": 3}}, "exactly one"),
    ({"default": {"years": 0}}, "whole number"),
    ({"default": {"years": "5"}}, "whole number"),
    ({"default": {"years": True}}, "whole number"),
    ({"default": {"years": 5}, "extra": 1}, "unknown key"),
    ({"default": {"years": 5}, "kind": [{"name": "a", "prefix": "x", "years": 1, "hours": 2}]}, "unknown key"),
    ({"default": {"years": 5}, "kind": [{"name": "a", "prefix": "X%", "years": 1}]}, "prefix"),
    ({"default": {"years": 5}, "kind": [{"name": "a", "prefix": "x", "years": 1},
                                        {"name": "a", "prefix": "y", "years": 1}]}, "duplicate kind name"),
    ({"default": {"years": 5}, "kind": [{"name": "a", "prefix": "x", "years": 1},
                                        {"name": "b", "prefix": "x", "years": 1}]}, "duplicate kind prefix"),
    ({"default": {"years": 5}, "kind": [{"name": "default", "prefix": "x", "years": 1}]}, "reserved"),
])
def test_an_invalid_configuration_is_refused_with_its_reason(data, message):
    with pytest.raises(RetentionConfigError, match=message):
        parse_policy(data, "test.toml")


def test_an_unreadable_configuration_file_is_refused(tmp_path):
    broken = tmp_path / "retention.toml"
    broken.write_text("default = {years = ")
    with pytest.raises(RetentionConfigError, match="retention.toml"):
        load_policy(broken)


def test_a_leap_day_cutoff_falls_back_to_the_28th():
    leap = datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc)
    assert FIVE_YEARS.kinds[-1].period.cutoff(leap) == datetime(2023, 2, 28, 12, 0, tzinfo=timezone.utc)
