"""`flask audit verify` and `flask audit checkpoint`, on a portal configured with its own signing key
and a JSON Lines sink; and the web layer's commits (survivors of a refused request included) going
through the chain and the sink."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text, update

from audit.models import AuditRecord, ChainLink, Checkpoint, Verification
from audit.operations import record
from tests.functional.helpers import audit_since, last_audit_id


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "audit_signing_key.pem"
    path.write_bytes(_pem(Ed25519PrivateKey.generate()))
    return path


@pytest.fixture
def sink_file(tmp_path):
    return tmp_path / "audit.jsonl"


def _make_app(db_session, **config):
    from portal import create_app

    db_session.info["shared"] = True
    return create_app({"TESTING": True, "DB_SESSION_FACTORY": lambda: db_session, "RATELIMIT_ENABLED": False,
                       "SERVER_NAME": "portal.test", **config})


@pytest.fixture
def app(db_session, clock, key_file, sink_file):
    """The portal of tests/conftest.py, with a signing key and a sink."""
    return _make_app(db_session, AUDIT_SIGNING_KEY=str(key_file), AUDIT_SINK=f"jsonl:{sink_file}")


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def some_records(db_session, clock, ctx):
    written = [record(db_session, ctx, action="test.cli", outcome="success", reason=f"r{n}") for n in range(5)]
    db_session.commit()
    return written


def _break_append_only(db_session) -> None:
    """Inside the test's transaction (rolled back after the test)."""
    if db_session.get_bind().dialect.name == "sqlite":
        db_session.execute(text("DROP TRIGGER audit_records_no_update"))
    else:
        db_session.execute(text("SET LOCAL session_replication_role = replica"))


def test_verify_of_an_intact_chain(cli, db_session, some_records):
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "audit chain: INTACT" in result.output
    assert "records: 5  links: 5  head: seq 5" in result.output
    assert "warning: no checkpoint: the chain is not covered by any signature" in result.output
    stored = db_session.scalars(select(Verification)).one()
    assert (stored.ok, stored.records, stored.links, stored.by_label, stored.first_broken_seq) == \
        (True, 5, 5, "cli", None)
    (audit,) = [r for r in audit_since(db_session, some_records[-1].id) if r.action == "audit.verify"]
    assert (audit.outcome, audit.details["records"]) == ("success", 5)
    assert db_session.scalar(select(ChainLink.seq).where(ChainLink.record_id == audit.id)) == 6


def test_verify_of_a_tampered_chain_names_the_first_broken_record(cli, db_session, some_records):
    _break_append_only(db_session)
    victim = some_records[2]
    db_session.execute(update(AuditRecord).where(AuditRecord.id == victim.id).values(reason="rewritten")
                       .execution_options(synchronize_session=False))
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.output
    assert "audit chain: BROKEN" in result.output
    assert f"first broken: seq 3, record {victim.id}: the record does not match its hash" in result.output
    stored = db_session.scalars(select(Verification)).one()
    assert (stored.ok, stored.first_broken_seq, stored.first_broken_record_id) == (False, 3, victim.id)
    assert db_session.scalars(select(AuditRecord.outcome).where(AuditRecord.action == "audit.verify")).one() == \
        "failure"


def test_checkpoint_then_verify_checks_its_signature(cli, db_session, some_records, tmp_path):
    result = cli("audit", "checkpoint")
    assert result.exit_code == 0, result.output
    assert "Checkpoint seq 1..5" in result.output
    assert cli("audit", "checkpoint").output.startswith("Nothing to sign")
    assert db_session.scalar(select(func.count()).select_from(Checkpoint)) == 1

    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "checkpoints checked: 1 (signatures verified: 1)" in result.output

    other = tmp_path / "other.pem"
    other.write_bytes(_pem(Ed25519PrivateKey.generate()))
    result = cli("audit", "verify", "--public-key", str(other))
    assert result.exit_code == 1
    assert "first broken: seq 1: checkpoint" in result.output and "signed by an unknown key" in result.output


def test_without_a_signing_key(db_session, clock, some_records):
    app = _make_app(db_session, AUDIT_SIGNING_KEY="")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 2
    assert "No signing key" in result.output
    assert db_session.scalar(select(func.count()).select_from(Checkpoint)) == 0
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "warning: no checkpoint" in result.output


def test_a_bad_sink_setting_stops_the_portal_at_start(db_session, clock, tmp_path):
    with pytest.raises(ValueError, match="AUDIT_SINK"):
        _make_app(db_session, AUDIT_SINK="ftp://nowhere")


def test_a_refused_requests_surviving_record_is_chained_and_shipped(world, visitor, db_session, sink_file):
    """portal/database.py rolls the refused request back, replays its decision record and commits."""
    enterprise = world.employer()
    admin = world.local_admin(enterprise)
    user = world.member(enterprise, admin, rights=("dmfa",))
    target = world.person(enterprise, "werknemer")
    browser = visitor()
    browser.login(user.login)
    start = last_audit_id(db_session)
    response = browser.post(f"/enterprises/{enterprise.id}/access/members", {"person_id": target.id, "role": "user"},
                            headers={"X-Request-ID": "req-chain-denied"})
    assert response.status_code == 403
    (denied,) = [r for r in audit_since(db_session, start) if r.request_id == "req-chain-denied"]
    seq = db_session.scalar(select(ChainLink.seq).where(ChainLink.record_id == denied.id))
    assert seq is not None
    shipped = [json.loads(line) for line in sink_file.read_text().splitlines()]
    assert [line["record"]["id"] for line in shipped if line["record"]["request_id"] == "req-chain-denied"] == \
        [denied.id]
    # From the first request on (the world was set up before the portal's sessions were), the sink
    # has every link the database has, and the same ones.
    links = db_session.execute(select(ChainLink.seq, ChainLink.record_hash).order_by(ChainLink.seq)).all()
    assert [(line["seq"], line["record_hash"]) for line in shipped] == [tuple(row) for row in links[-len(shipped):]]
    assert db_session.scalar(select(func.count()).select_from(AuditRecord)) == len(links)
