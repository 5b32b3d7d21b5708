"""The chain is written at commit time: every committed record gets exactly one link, in order, with the
hash the documented encoding gives; what is rolled back leaves no link; survivors replayed after a
rollback are chained like any record."""
from __future__ import annotations

import hashlib
import json
from datetime import timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.chain import GENESIS_HASH, RECORD_FIELDS, verify
from audit.models import AuditRecord, ChainLink
from audit.operations import SURVIVORS_KEY, record, replay_survivors
from tests.unit.mandates.isolated_db import isolated_engine


def links_of(session: Session, record_ids) -> list[ChainLink]:
    return list(session.scalars(select(ChainLink).where(ChainLink.record_id.in_(list(record_ids)))
                                .order_by(ChainLink.seq)))


def head_seq(session: Session) -> int:
    return session.scalar(select(func.max(ChainLink.seq))) or 0


def documented_hash(row: dict, seq: int, prev_hash: str) -> str:
    """The encoding as audit/chain.py's docstring describes it, written again from that text."""
    fields = dict(row)
    at = fields["occurred_at"]
    at = at.astimezone(timezone.utc) if at.tzinfo else at
    fields["occurred_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = json.dumps({"v": 1, "seq": seq, "prev_hash": prev_hash, "record": fields}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_encoding_covers_every_column_of_the_records():
    assert set(RECORD_FIELDS) == {column.key for column in AuditRecord.__table__.columns}


def test_a_commit_links_its_records_in_order_with_the_documented_hash(db_session, clock, ctx):
    start = head_seq(db_session)
    written = [record(db_session, ctx, action="test.chain", outcome="success", reason=f"n°{n}",
                      details={"z": n, "a": [1.5, None, "é"]}, path=["a", "b"]) for n in range(3)]
    db_session.commit()
    chain = links_of(db_session, [r.id for r in written])
    assert [(link.seq, link.record_id) for link in chain] == [(start + n + 1, r.id) for n, r in enumerate(written)]
    previous = db_session.scalar(select(ChainLink.record_hash).where(ChainLink.seq == start)) or GENESIS_HASH
    for link in chain:
        row = db_session.execute(select(AuditRecord.__table__).where(AuditRecord.id == link.record_id)).one()
        assert link.prev_hash == previous
        assert link.record_hash == documented_hash(row._asdict(), link.seq, previous)
        previous = link.record_hash
    assert verify(db_session).ok


def test_records_are_chained_by_the_commit_even_when_only_flushed_before(db_session, clock, ctx):
    entry = record(db_session, ctx, action="test.chain", outcome="success")
    db_session.flush()
    assert links_of(db_session, [entry.id]) == []
    db_session.commit()
    assert len(links_of(db_session, [entry.id])) == 1


def test_a_rolled_back_transaction_leaves_no_link_and_no_gap(db_session, clock, ctx):
    db_session.commit()
    start = head_seq(db_session)
    record(db_session, ctx, action="test.doomed", outcome="success")
    db_session.flush()
    db_session.rollback()
    kept = record(db_session, ctx, action="test.kept", outcome="success")
    db_session.commit()
    assert db_session.scalar(select(func.count()).select_from(ChainLink).join(
        AuditRecord, AuditRecord.id == ChainLink.record_id).where(AuditRecord.action == "test.doomed")) == 0
    assert [(link.seq, link.record_id) for link in links_of(db_session, [kept.id])] == [(start + 1, kept.id)]
    assert head_seq(db_session) == start + 1
    assert verify(db_session).ok


def test_a_savepoint_rolled_back_inside_the_transaction(db_session, clock, ctx):
    start = head_seq(db_session)
    before = record(db_session, ctx, action="test.before", outcome="success")
    with pytest.raises(RuntimeError):
        with db_session.begin_nested():
            record(db_session, ctx, action="test.inside", outcome="success")
            db_session.flush()
            raise RuntimeError("undo the savepoint")
    after = record(db_session, ctx, action="test.after", outcome="success")
    db_session.commit()
    assert [link.record_id for link in links_of(db_session, [before.id, after.id])] == [before.id, after.id]
    assert head_seq(db_session) == start + 2
    assert db_session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "test.inside")) == 0
    assert verify(db_session).ok


def test_a_released_savepoint_chains_its_records(db_session, clock, ctx):
    with db_session.begin_nested():
        inside = record(db_session, ctx, action="test.inside", outcome="success")
    assert len(links_of(db_session, [inside.id])) == 1
    db_session.commit()
    assert len(links_of(db_session, [inside.id])) == 1


def test_survivors_replayed_after_a_rollback_are_chained(db_session, clock, ctx):
    """What portal/database.py does when a request fails: roll back, replay the survivors, commit."""
    start = head_seq(db_session)
    record(db_session, ctx, action="test.undone", outcome="success")
    record(db_session, ctx, action="decision:test", outcome="denied", survive_rollback=True)
    db_session.flush()
    survivors = db_session.info.pop(SURVIVORS_KEY)
    db_session.rollback()
    replay_survivors(db_session, survivors)
    db_session.commit()
    chained = db_session.execute(select(ChainLink.seq, AuditRecord.action).join(
        AuditRecord, AuditRecord.id == ChainLink.record_id).where(ChainLink.seq > start)).all()
    assert [tuple(row) for row in chained] == [(start + 1, "decision:test")]
    assert verify(db_session).ok


def test_verify_of_an_empty_chain(database_url, tmp_path):
    with isolated_engine(database_url, tmp_path, "empty") as engine, Session(engine) as session:
        result = verify(session)
    assert (result.ok, result.records, result.links, result.head_seq) == (True, 0, 0, None)
    assert result.warnings == ["no checkpoint: the chain is not covered by any signature"]
