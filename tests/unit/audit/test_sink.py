"""The sink gets exactly the committed records, after the commit, as lines an auditor can check
without the database; a failing sink never fails the commit."""
from __future__ import annotations

import hashlib
import json
import logging

import pytest
from sqlalchemy import select

from audit.chain import GENESIS_HASH, canonical_bytes
from audit.models import ChainLink
from audit.operations import SURVIVORS_KEY, record, replay_survivors
from audit.settings import SETTINGS_KEY, AuditSettings
from audit.sink import JsonLinesSink, SyslogSink, sink_from_spec
from tests.unit.audit.chain_fixtures import settings


@pytest.fixture
def sink_file(db_session, tmp_path):
    path = tmp_path / "audit.jsonl"
    db_session.info[SETTINGS_KEY] = settings(None, sink=JsonLinesSink(path))
    return path


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_the_sink_writes_exactly_the_committed_records(db_session, clock, ctx, sink_file):
    kept = [record(db_session, ctx, action="test.kept", outcome="success", reason="één")]
    db_session.commit()
    record(db_session, ctx, action="test.rolled-back", outcome="success")
    db_session.flush()
    db_session.rollback()
    with pytest.raises(RuntimeError):
        with db_session.begin_nested():
            with db_session.begin_nested():  # chained when released, then undone with its parent
                record(db_session, ctx, action="test.savepoint-undone", outcome="success")
            raise RuntimeError("undo")
    kept.append(record(db_session, ctx, action="test.kept", outcome="success"))
    record(db_session, ctx, action="test.undone-by-the-request", outcome="success")
    kept.append(record(db_session, ctx, action="test.survivor", outcome="denied", survive_rollback=True))
    db_session.flush()
    survivors = db_session.info.pop(SURVIVORS_KEY)
    db_session.rollback()  # as portal/database.py does for a failed request
    replay_survivors(db_session, survivors)
    db_session.commit()

    written = lines(sink_file)
    assert [line["record"]["action"] for line in written] == ["test.kept", "test.survivor"]
    links = db_session.execute(select(ChainLink.seq, ChainLink.record_hash).order_by(ChainLink.seq)).all()
    assert [(line["seq"], line["record_hash"]) for line in written] == [tuple(row) for row in links]


def test_each_line_carries_what_its_hash_covers(db_session, clock, ctx, sink_file):
    for n in range(3):
        record(db_session, ctx, action="test.line", outcome="success", details={"n": n, "é": [1.5]})
    db_session.commit()
    previous = GENESIS_HASH
    for line in lines(sink_file):
        assert line["prev_hash"] == previous and line["v"] == 1
        recomputed = canonical_bytes(line["record"], line["seq"], line["prev_hash"])
        assert hashlib.sha256(recomputed).hexdigest() == line["record_hash"]
        previous = line["record_hash"]
    assert len(lines(sink_file)) == 3


def test_a_failing_sink_is_logged_and_the_commit_stands(db_session, clock, ctx, tmp_path, caplog):
    db_session.info[SETTINGS_KEY] = settings(None, sink=JsonLinesSink(tmp_path))  # a directory: open() fails
    entry = record(db_session, ctx, action="test.sink-down", outcome="success")
    with caplog.at_level(logging.ERROR, logger="audit.sink"):
        db_session.commit()
    assert "1 records not written" in caplog.text
    assert db_session.scalar(select(ChainLink.seq).where(ChainLink.record_id == entry.id)) == 1


def test_no_sink_no_file(db_session, clock, ctx, tmp_path):
    db_session.info[SETTINGS_KEY] = AuditSettings()
    record(db_session, ctx, action="test.nosink", outcome="success")
    db_session.commit()
    assert list(tmp_path.iterdir()) == []


def test_sink_specifications(tmp_path):
    assert sink_from_spec("") is None and sink_from_spec("  ") is None
    sink = sink_from_spec(f"jsonl:{tmp_path / 'a.jsonl'}", fsync=True)
    assert isinstance(sink, JsonLinesSink) and sink.path == tmp_path / "a.jsonl" and sink.fsync
    assert isinstance(sink_from_spec("syslog"), SyslogSink)
    for bad in ("jsonl:", "file:/tmp/x", f"jsonl:{tmp_path / 'missing' / 'a.jsonl'}"):
        with pytest.raises(ValueError, match="AUDIT_SINK"):
            sink_from_spec(bad)


def test_fsync_and_append(tmp_path):
    sink = JsonLinesSink(tmp_path / "a.jsonl", fsync=True)
    sink.write(['{"a":1}'])
    sink.write(['{"b":2}', '{"c":3}'])
    assert (tmp_path / "a.jsonl").read_text() == '{"a":1}\n{"b":2}\n{"c":3}\n'
