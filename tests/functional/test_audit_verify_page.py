"""The verify page and its API (the last `audit verify` result, for the institution's security officer
only: the chain is global) and `flask audit purge [--dry-run]` end to end."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from access import security_officers as sec
from audit.chain import Problem, VerifyResult, record_verification
from audit.models import AuditRecord, ChainLink, Checkpoint, Purge, PurgedRecord, RecordSubject, Verification
from audit.operations import record
from tests.functional.helpers import NothingWritten, page, problem_of, row_counts

AUDIT_TABLES = (AuditRecord, Purge, PurgedRecord, ChainLink, Checkpoint, Verification, RecordSubject)


@pytest.fixture
def bakery(world):
    return world.employer("Bakkerij De Gouden Korst")


@pytest.fixture
def vera(world, db_session):
    """The institution's security officer."""
    person = world.person(first="Vera", last="Veilig")
    sec.appoint_institution_officer(db_session, person, by=world.ctx)
    world.commit()
    return world.give_own_credentials(person)


def _browser(visitor, persona, api=False):
    browser = visitor()
    response = browser.api_login(persona.login) if api else browser.login(persona.login)
    assert response.status_code in (200, 302)
    return browser


def _verified(db_session, clock, *, broken_record_id=None, purged=0):
    result = VerifyResult(started_at=clock.now(), finished_at=clock.now(), records=12, links=14, checkpoints=2,
                          head_seq=14, head_hash="a" * 64, purged=purged)
    result.warnings.append("checkpoint signatures not checked: no public key")
    if broken_record_id is not None:
        result.add(Problem("edited-record", "the record does not match its hash", 7, broken_record_id))
    record_verification(db_session, result, by_label="cli")
    db_session.commit()


def test_the_institution_officer_sees_that_nothing_was_verified_yet(vera, visitor):
    shown = page(_browser(visitor, vera).get("/audit/verification"))
    assert shown.testid("verify-none")
    assert "flask --app wsgi audit verify" in shown.text


def test_the_page_shows_the_last_result_its_age_and_counts(vera, visitor, db_session, clock):
    _verified(db_session, clock, purged=2)
    clock.advance(hours=26, minutes=5)
    browser = _browser(visitor, vera)
    shown = page(browser.get("/audit/verification"))
    assert "1 day(s), 2 hour(s) and 5 minute(s) ago" in shown.testid("verify-age")
    assert "Intact" in shown.testid("verify-outcome")
    assert (shown.testid("verify-records"), shown.testid("verify-purged"), shown.testid("verify-checkpoints")) == (
        "12", "2", "2")
    assert "no public key" in shown.testid("verify-warnings")
    body = browser.api("GET", "/api/v1/audit/verification").get_json()
    assert (body["last"]["ok"], body["last"]["purged"], body["last"]["age_seconds"]) == (True, 2, 26 * 3600 + 300)
    assert body["command"] == "flask --app wsgi audit verify"


def test_a_broken_chain_links_to_its_first_broken_record(vera, visitor, db_session, clock, ctx):
    victim = record(db_session, ctx, action="test.victim", outcome="success")
    db_session.commit()
    _verified(db_session, clock, broken_record_id=victim.id)
    shown = page(_browser(visitor, vera).get("/audit/verification"))
    assert "BROKEN" in shown.testid("verify-outcome")
    assert shown.find("a", href=f"/audit/records/{victim.id}") is not None
    assert "edited-record" in shown.testid("verify-first-broken")


@pytest.mark.parametrize("who", ["enterprise-officer", "local-admin", "portal-officer"])
def test_everyone_else_is_refused_with_only_the_decision_written(who, world, db_session, bakery, visitor):
    admin = world.local_admin(bakery)
    if who == "enterprise-officer":
        sec.appoint_enterprise_officer(db_session, bakery, admin.person,
                                       by=world.ctx.as_actor(admin.person.id, admin.login))
        world.commit()
    persona = world.officer() if who == "portal-officer" else admin
    browser = _browser(visitor, persona, api=True)
    with NothingWritten(db_session, audit=1, outcome="denied"):
        assert browser.get("/audit/verification").status_code == 403
    with NothingWritten(db_session, audit=1, outcome="denied"):
        assert problem_of(browser.api("GET", "/api/v1/audit/verification"), 403)


def test_anonymous_visitors_are_refused(visitor, db_session):
    anonymous = visitor()
    with NothingWritten(db_session, audit=2, outcome="denied"):
        assert anonymous.get("/audit/verification").status_code in (302, 401)
        assert problem_of(anonymous.get("/api/v1/audit/verification"), 401)


# --- flask audit purge ----------------------------------------------------------------------------------


@pytest.fixture
def cli_app(db_session, clock, tmp_path):
    from portal import create_app

    key = tmp_path / "key.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    db_session.info["shared"] = True
    return create_app({"TESTING": True, "DB_SESSION_FACTORY": lambda: db_session, "RATELIMIT_ENABLED": False,
                       "SERVER_NAME": "portal.test", "AUDIT_SIGNING_KEY": str(key), "AUDIT_CHECKPOINT_EVERY": 0})


@pytest.fixture
def cli(cli_app):
    runner = cli_app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def test_the_purge_command_previews_purges_and_verify_still_passes(cli, db_session, clock, ctx):
    for n in range(6):
        record(db_session, ctx, action="test.old", outcome="success", reason=f"r{n}")
    db_session.commit()
    assert cli("audit", "checkpoint").exit_code == 0
    clock.advance(days=5 * 366)
    record(db_session, ctx, action="test.recent", outcome="success")
    db_session.commit()

    before = row_counts(db_session, AUDIT_TABLES)
    preview = cli("audit", "purge", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "would purge 6 record(s)" in preview.output and "dry run, nothing written" in preview.output
    assert row_counts(db_session, AUDIT_TABLES) == before

    done = cli("audit", "purge")
    assert done.exit_code == 0, done.output
    assert "purged 6 record(s)" in done.output
    assert db_session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "test.old")) == 0
    assert db_session.scalars(select(Purge)).one().count == 6

    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "records purged by retention: 6" in verified.output


def test_an_invalid_retention_file_is_refused_and_nothing_written(cli_app, db_session, tmp_path):
    bad = tmp_path / "retention.toml"
    bad.write_text("[default]\nyears = 0\n")
    cli_app.config["AUDIT_RETENTION"] = str(bad)
    before = row_counts(db_session, AUDIT_TABLES)
    result = cli_app.test_cli_runner().invoke(args=["audit", "purge"])
    assert result.exit_code == 2
    assert "whole number" in result.output
    assert row_counts(db_session, AUDIT_TABLES) == before
