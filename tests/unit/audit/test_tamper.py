"""Tamper evidence: on a committed chain of 3,050 records (three signed checkpoints and a tail of 50),
every kind of tampering is detected by verify and the report names the first broken record.

Each test tampers inside a transaction that is rolled back (chain_fixtures.tampering: the append-only
triggers dropped and the foreign keys out of the way, as a forger with the database's owner rights
would do), so the chain stays intact for the next test."""
from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from audit.chain import RECORD_FIELDS, canonical_record, record_hash, verify
from audit.checkpoints import key_id, merkle_root, statement_bytes
from audit.models import AuditRecord, ChainLink, Checkpoint
from tests.unit.audit.chain_fixtures import tampering
from tests.unit.audit.conftest import CHAIN_RECORDS

records, links, checkpoints = AuditRecord.__table__, ChainLink.__table__, Checkpoint.__table__
RECORD_COLUMNS = [records.c[name] for name in RECORD_FIELDS]
VICTIM_SEQ = 1234  # inside the checkpoint 1001..2000


def check(connection, chain_db, *keys):
    with Session(bind=connection) as session:
        return verify(session, public_keys=keys or [chain_db.key.public_key()])


def link_at(connection, seq: int):
    return connection.execute(select(links).where(links.c.seq == seq)).one()


def record_of(connection, record_id: int):
    return connection.execute(select(*RECORD_COLUMNS).where(records.c.id == record_id)).one()


def assert_first_broken(result, seq: int | None, record_id: int | None, *kinds: str) -> None:
    assert not result.ok, result.report()
    first = result.first_broken
    assert (first.seq, first.record_id) == (seq, record_id), result.report()
    if kinds:
        assert first.kind in kinds, result.report()


def rechain_from(connection, seq: int) -> None:
    """What a forger who knows the encoding does after an edit: recompute every link from `seq` on."""
    previous = link_at(connection, seq - 1).record_hash if seq > 1 else "0" * 64
    for link in connection.execute(select(links).where(links.c.seq >= seq).order_by(links.c.seq)).all():
        digest = record_hash(canonical_record(record_of(connection, link.record_id)), link.seq, previous)
        connection.execute(update(links).where(links.c.seq == link.seq).values(prev_hash=previous,
                                                                               record_hash=digest))
        previous = digest


def test_the_untouched_chain_verifies(chain_db):
    with tampering(chain_db.engine) as connection:
        result = check(connection, chain_db)
    assert result.ok, result.report()
    assert (result.records, result.links, result.head_seq) == (CHAIN_RECORDS, CHAIN_RECORDS, CHAIN_RECORDS)
    assert (result.checkpoints, result.signatures_checked, result.warnings) == (3, 3, [])


def test_the_encoding_is_the_same_on_every_backend(chain_db):
    """The chain of the same records has the same head on SQLite and on PostgreSQL (the records are
    seeded and their clock frozen): the encoding depends on the values, not on how a driver returns them."""
    with tampering(chain_db.engine) as connection:
        head = link_at(connection, CHAIN_RECORDS).record_hash
    assert head == "b7f0d7d42f6ad471d251d9aa9b394bea0c0a7efe88d78f07d3bf7e8b7a65f374"


# --- the records ---------------------------------------------------------------------------------

def _other_value(chain_db, column: str, current):
    if column == "id":
        return 10_000_000
    if column == "occurred_at":
        return current + timedelta(microseconds=1)
    if column == "actor_person_id":
        return next(i for i in chain_db.person_ids if i != current)
    if column in ("enterprise_id", "provider_enterprise_id"):
        return next(i for i in chain_db.enterprise_ids if i != current)
    if column == "path":
        return (current or []) + ["forged"]
    if column == "details":
        return {**(current or {}), "forged": 1}
    return (current or "") + "x"


@pytest.mark.parametrize("column", RECORD_FIELDS)
def test_an_edit_of_any_column_names_the_record(chain_db, column):
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        current = getattr(record_of(connection, victim), column)
        connection.execute(update(records).where(records.c.id == victim)
                           .values({column: _other_value(chain_db, column, current)}))
        result = check(connection, chain_db)
    if column == "id":  # the link now points at no record, and a record has no link
        assert_first_broken(result, VICTIM_SEQ, victim, "missing-record")
        assert any(p.kind == "unlinked-record" and p.record_id == 10_000_000 for p in result.problems)
    else:
        assert_first_broken(result, VICTIM_SEQ, victim, "edited-record")
        assert result.problem_count == 2  # the record, and the Merkle root of its checkpoint


def test_an_edit_with_the_chain_recomputed_is_caught_by_the_checkpoint(chain_db):
    """A forger who knows the encoding rewrites every link after the edit: the chain is consistent
    again, but the signed checkpoints of 1001..2000 and 2001..3000 no longer match."""
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        connection.execute(update(records).where(records.c.id == victim).values(reason="nothing happened"))
        rechain_from(connection, VICTIM_SEQ)
        result = check(connection, chain_db)
    assert not result.ok
    assert [p.kind for p in result.problems] == ["checkpoint-root", "checkpoint-root"], result.report()
    assert result.first_broken.seq == 1001 and "(seq 1001..2000)" in result.first_broken.message


def test_a_swap_of_two_records_contents(chain_db):
    with tampering(chain_db.engine) as connection:
        first, second = link_at(connection, VICTIM_SEQ).record_id, link_at(connection, 2500).record_id
        a, b = record_of(connection, first)._asdict(), record_of(connection, second)._asdict()
        for target, source in ((first, b), (second, a)):
            connection.execute(update(records).where(records.c.id == target)
                               .values({k: v for k, v in source.items() if k != "id"}))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, first, "edited-record")
    assert any(p.seq == 2500 and p.record_id == second for p in result.problems)


def test_a_swap_of_two_records_places_in_the_chain(chain_db):
    with tampering(chain_db.engine) as connection:
        first, second = link_at(connection, VICTIM_SEQ).record_id, link_at(connection, VICTIM_SEQ + 1).record_id
        connection.execute(update(links).where(links.c.seq == VICTIM_SEQ).values(record_id=-1))
        connection.execute(update(links).where(links.c.seq == VICTIM_SEQ + 1).values(record_id=first))
        connection.execute(update(links).where(links.c.seq == VICTIM_SEQ).values(record_id=second))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, second, "edited-record")


# --- deletions -----------------------------------------------------------------------------------

def test_a_deleted_record_and_its_link(chain_db):
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        connection.execute(delete(links).where(links.c.seq == VICTIM_SEQ))
        connection.execute(delete(records).where(records.c.id == victim))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, None, "missing-link")
    assert "links 1234..1234 are missing" in result.first_broken.message


def test_a_deleted_record_whose_link_stays(chain_db):
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        connection.execute(delete(records).where(records.c.id == victim))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, victim, "missing-record")


def test_a_deleted_link_whose_record_stays(chain_db):
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        connection.execute(delete(links).where(links.c.seq == VICTIM_SEQ))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, None, "missing-link")
    assert any(p.kind == "unlinked-record" and p.record_id == victim for p in result.problems)


def test_deleted_records_at_the_end_of_a_checkpointed_interval(chain_db):
    """The last 100 records and their links removed: the chain alone still looks whole (it is
    shorter); the checkpoint 2001..3000 says the chain went further."""
    with tampering(chain_db.engine) as connection:
        doomed = [row.record_id for row in connection.execute(select(links.c.record_id).where(links.c.seq > 2950))]
        connection.execute(delete(links).where(links.c.seq > 2950))
        connection.execute(delete(records).where(records.c.id.in_(doomed)))
        result = check(connection, chain_db)
    assert_first_broken(result, 2951, None, "checkpoint-beyond-head")


# --- insertions ----------------------------------------------------------------------------------

def _forged_values(connection, template_seq: int) -> dict:
    values = record_of(connection, link_at(connection, template_seq).record_id)._asdict()
    values.update(id=9_000_000, reason="forged")
    return values


def test_a_forged_record_without_a_link(chain_db):
    with tampering(chain_db.engine) as connection:
        connection.execute(insert(records).values(_forged_values(connection, VICTIM_SEQ)))
        result = check(connection, chain_db)
    assert_first_broken(result, None, 9_000_000, "unlinked-record")
    assert result.problem_count == 1


def test_a_forged_record_with_a_forged_link_in_the_middle(chain_db):
    """The forger makes room at VICTIM_SEQ and writes a correct link for his record there; the link
    after it no longer follows."""
    with tampering(chain_db.engine) as connection:
        forged = _forged_values(connection, VICTIM_SEQ)
        connection.execute(insert(records).values(forged))
        for seq in range(CHAIN_RECORDS, VICTIM_SEQ - 1, -1):
            connection.execute(update(links).where(links.c.seq == seq).values(seq=seq + 1))
        previous = link_at(connection, VICTIM_SEQ - 1).record_hash
        digest = record_hash(canonical_record(record_of(connection, forged["id"])), VICTIM_SEQ, previous)
        connection.execute(insert(links).values(seq=VICTIM_SEQ, record_id=forged["id"], prev_hash=previous,
                                                record_hash=digest, chained_at=forged["occurred_at"]))
        result = check(connection, chain_db)
    displaced = link_at_after_rollback(chain_db, VICTIM_SEQ)
    assert_first_broken(result, VICTIM_SEQ + 1, displaced, "edited-link", "edited-record")


def test_a_forged_record_with_the_whole_chain_recomputed(chain_db):
    with tampering(chain_db.engine) as connection:
        forged = _forged_values(connection, VICTIM_SEQ)
        connection.execute(insert(records).values(forged))
        for seq in range(CHAIN_RECORDS, VICTIM_SEQ - 1, -1):
            connection.execute(update(links).where(links.c.seq == seq).values(seq=seq + 1))
        connection.execute(insert(links).values(seq=VICTIM_SEQ, record_id=forged["id"], prev_hash="0" * 64,
                                                record_hash="0" * 64, chained_at=forged["occurred_at"]))
        rechain_from(connection, VICTIM_SEQ)
        result = check(connection, chain_db)
    assert_first_broken(result, 1001, None, "checkpoint-root")


def link_at_after_rollback(chain_db, seq: int) -> int:
    with chain_db.engine.connect() as connection:
        return link_at(connection, seq).record_id


# --- the links -----------------------------------------------------------------------------------

@pytest.mark.parametrize("change, kinds", [
    ({"record_hash": "f" * 64}, ("edited-record",)),
    ({"prev_hash": "f" * 64}, ("edited-link",)),
])
def test_an_edited_link(chain_db, change, kinds):
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, VICTIM_SEQ).record_id
        connection.execute(update(links).where(links.c.seq == VICTIM_SEQ).values(change))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, victim, *kinds)


def test_a_link_moved_to_another_seq(chain_db):
    with tampering(chain_db.engine) as connection:
        connection.execute(update(links).where(links.c.seq == VICTIM_SEQ).values(seq=5_000_000))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, None, "missing-link")


def test_a_second_link_for_a_record(chain_db):
    with tampering(chain_db.engine) as connection:
        if connection.dialect.name == "sqlite":
            pytest.skip("the unique constraint cannot be dropped in SQLite without rebuilding the table")
        connection.exec_driver_sql("ALTER TABLE audit_chain DROP CONSTRAINT uq_audit_chain_record_id")
        head = link_at(connection, CHAIN_RECORDS)
        victim = link_at(connection, VICTIM_SEQ).record_id
        digest = record_hash(canonical_record(record_of(connection, victim)), CHAIN_RECORDS + 1, head.record_hash)
        connection.execute(insert(links).values(seq=CHAIN_RECORDS + 1, record_id=victim, prev_hash=head.record_hash,
                                                record_hash=digest, chained_at=head.chained_at))
        result = check(connection, chain_db)
    assert_first_broken(result, VICTIM_SEQ, victim, "duplicate-link")


# --- the checkpoints -----------------------------------------------------------------------------

def _checkpoint(connection, seq_from: int):
    return connection.execute(select(checkpoints).where(checkpoints.c.seq_from == seq_from)).one()


def test_a_forged_checkpoint_signature(chain_db):
    with tampering(chain_db.engine) as connection:
        signature = _checkpoint(connection, 1001).signature
        forged = ("0" if signature[0] != "0" else "1") + signature[1:]
        connection.execute(update(checkpoints).where(checkpoints.c.seq_from == 1001).values(signature=forged))
        result = check(connection, chain_db)
    assert_first_broken(result, 1001, None, "checkpoint-signature")
    assert result.problem_count == 1


def test_a_checkpoint_with_a_wrong_merkle_root(chain_db):
    """Signed with the portal's own key, so only the root is wrong (say, a bug or a stolen key)."""
    with tampering(chain_db.engine) as connection:
        row = _checkpoint(connection, 1001)
        wrong_root = merkle_root([link_at(connection, seq).record_hash for seq in range(1001, 2000)])
        fields = dict(seq_from=1001, seq_to=2000, head_hash=row.head_hash, merkle_root=wrong_root,
                      key_id=row.key_id, created_at=row.created_at)
        signature = chain_db.key.sign(statement_bytes(**fields)).hex()
        connection.execute(update(checkpoints).where(checkpoints.c.id == row.id)
                           .values(merkle_root=wrong_root, signature=signature))
        result = check(connection, chain_db)
    assert_first_broken(result, 1001, None, "checkpoint-root")
    assert result.problem_count == 1


def test_a_checkpoint_signed_by_another_key(chain_db):
    """A forger re-signs a checkpoint over his rewritten chain with a key of his own."""
    forger = Ed25519PrivateKey.generate()
    with tampering(chain_db.engine) as connection:
        row = _checkpoint(connection, 1)
        fields = dict(seq_from=1, seq_to=1000, head_hash=row.head_hash, merkle_root=row.merkle_root,
                      key_id=key_id(forger.public_key()), created_at=row.created_at)
        connection.execute(update(checkpoints).where(checkpoints.c.id == row.id).values(
            key_id=fields["key_id"], signature=forger.sign(statement_bytes(**fields)).hex()))
        result = check(connection, chain_db)
    assert_first_broken(result, 1, None, "checkpoint-key")


def test_without_a_public_key_the_signatures_are_not_checked_and_it_says_so(chain_db):
    with tampering(chain_db.engine) as connection:
        with Session(bind=connection) as session:
            result = verify(session, public_keys=[])
    assert result.ok and result.signatures_checked == 0 and result.checkpoints == 3
    assert any("signatures not checked" in warning for warning in result.warnings)


# --- any single edit ------------------------------------------------------------------------------

@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, CHAIN_RECORDS), column=st.sampled_from(RECORD_FIELDS[1:]), data=st.data())
def test_any_single_edit_is_detected_at_its_record(chain_db, seq, column, data):
    # What a database holds: PostgreSQL text cannot contain NUL (a forger cannot write it either).
    chars = st.characters(exclude_characters="\x00")
    text_values = st.one_of(st.none(), st.text(chars, max_size=20))
    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(chars, max_size=5),
                               lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(chars, max_size=3),
                                                                                         inner, max_size=3),
                               max_leaves=6)
    strategies = {
        "occurred_at": st.integers(-10**9, 10**9).filter(bool),
        "actor_person_id": st.sampled_from(chain_db.person_ids + [None]),
        "enterprise_id": st.sampled_from(chain_db.enterprise_ids + [None]),
        "provider_enterprise_id": st.sampled_from(chain_db.enterprise_ids + [None]),
        "action": st.text(chars, min_size=1, max_size=20), "outcome": st.sampled_from(["success", "denied", "x"]),
        "path": st.one_of(st.none(), st.lists(st.text(chars, max_size=5), max_size=3)), "details": json_values,
    }
    value = data.draw(strategies.get(column, text_values))
    with tampering(chain_db.engine) as connection:
        victim = link_at(connection, seq).record_id
        before = record_of(connection, victim)
        if column == "occurred_at":
            value = before.occurred_at + timedelta(microseconds=value)
        connection.execute(update(records).where(records.c.id == victim).values({column: value}))
        after = record_of(connection, victim)
        assume(canonical_record(after) != canonical_record(before))
        result = check(connection, chain_db)
    assert_first_broken(result, seq, victim, "edited-record")
