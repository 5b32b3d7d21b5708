"""bench/audit.py at a tiny size: it appends, verifies and checks its own chain; a chain that does not
verify fails the run. Timings are printed by the script, never asserted here. (With DATABASE_URL set
to PostgreSQL it runs there too, in schemas of its own that it drops.)"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert

import bench.audit as audit_bench
from audit.models import AuditRecord

TINY = ["--records", "300", "--per-commit", "7", "--request-records", "20", "--checkpoint-every", "100",
        "--batch", "64", "--seed", "7", "--query-runs", "3"]


def test_tiny_run_appends_and_verifies(capsys):
    rc = audit_bench.main(TINY)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "sqlite: 300 records, a commit every 7" in out
    assert "verify result: INTACT, 320 records, 320 links, 3 checkpoints (3 signatures)" in out
    for figure in ("append (baseline, no chain):", "append (chain):", "per request (1 record per commit, 20 records)",
                   "SELECT (baseline, 320 rows streamed)", "verify:", "review screen queries (320 records, 3 calls each",
                   "institution, default (newest page):", "enterprise officer, default (newest page):",
                   "enterprise officer, next page (cursor):", "institution, words in the reason:",
                   "export csv   (all 320 records", "export jsonl (all 320 records", "export memory (CSV"):
        assert figure in out, figure
    assert "TODO" not in out
    assert "FAILED" not in out


def test_a_chain_that_does_not_verify_fails_the_run(monkeypatch, capsys):
    real_verify = audit_bench.timed_verify

    def verify_after_a_forgery(engine, key, batch):
        with engine.begin() as connection:
            connection.execute(insert(AuditRecord.__table__).values(
                occurred_at=datetime(2026, 11, 2, tzinfo=timezone.utc), action="forged", outcome="success"))
        return real_verify(engine, key, batch)

    monkeypatch.setattr(audit_bench, "timed_verify", verify_after_a_forgery)
    rc = audit_bench.main(TINY)
    out = capsys.readouterr().out
    assert rc == 1
    assert "verify result: BROKEN" in out
    assert "first broken: record 321: the record has no link" in out
    assert "FAILED" in out
