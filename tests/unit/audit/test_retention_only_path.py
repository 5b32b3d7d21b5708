"""Issue 5: "there must be no code path that changes or deletes a record except the retention purge".

The database refuses UPDATE always and DELETE outside the purge (test_append_only.py, test_retention.py);
this test keeps the code base honest too: it reads every Python module of the portal (not the tests,
not the migrations, whose trigger SQL names the verbs) and fails when a statement that would update or
delete audit records, or their subject index, appears anywhere but in audit/retention.py."""
from __future__ import annotations

import re
from pathlib import Path

from portal import ROOT

ALLOWED = {Path("audit/retention.py")}
SKIPPED_DIRS = {"tests", "migrations", ".venv", "node_modules", "instance"}
TARGETS = r"(?:AuditRecord|RecordSubject|audit_records|audit_record_subjects|_records|_subjects)"
FORBIDDEN = [
    # SQL text
    re.compile(r"\b(?:DELETE\s+FROM|UPDATE)\s+\"?audit_(?:records|record_subjects)\b", re.IGNORECASE),
    re.compile(r"\bTRUNCATE\b[^\"'\n]*\baudit_(?:records|record_subjects)\b", re.IGNORECASE),
    # SQLAlchemy: delete(AuditRecord), update(AuditRecord.__table__), delete(_records), ...
    re.compile(rf"\b(?:delete|update)\(\s*{TARGETS}\b"),
    # Table.delete() / Table.update(), Query.delete() / Query.update() on the records
    re.compile(rf"\b{TARGETS}(?:\.__table__)?\.(?:delete|update)\("),
    re.compile(r"query\(\s*(?:AuditRecord|RecordSubject)\b[^\n]*\.(?:delete|update)\("),
]


def offending_lines(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIPPED_DIRS or relative in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(pattern.search(line) for pattern in FORBIDDEN):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_only_the_retention_purge_updates_or_deletes_audit_records():
    assert offending_lines(ROOT) == []


def test_the_purge_itself_is_found_by_the_scan():
    """The patterns match the purge's own statements: the scan above is not blind."""
    purge_source = (ROOT / "audit" / "retention.py").read_text(encoding="utf-8")
    matched = [line for line in purge_source.splitlines() if any(p.search(line) for p in FORBIDDEN)]
    assert len(matched) >= 2, matched


def test_a_new_statement_elsewhere_would_fail_the_scan(tmp_path):
    module = tmp_path / "access" / "cleanup.py"
    module.parent.mkdir()
    for statement in ('session.execute(text("DELETE FROM audit_records WHERE id = 1"))',
                      "session.execute(update(AuditRecord).values(reason='x'))",
                      "session.execute(AuditRecord.__table__.delete())",
                      'connection.exec_driver_sql("update audit_record_subjects set person_id = 2")',
                      "session.query(AuditRecord).filter_by(id=1).delete()",
                      'op.execute("TRUNCATE audit_records")'):
        module.write_text(f"def cleanup(session):\n    {statement}\n")
        assert offending_lines(tmp_path) == [f"access/cleanup.py:2: {statement}"], statement
