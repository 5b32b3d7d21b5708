"""The command line of issue 4: `flask certificates recheck|warn-expiry` and `flask oauth purge`. Same
operations as the web, one transaction per command, the trust list the web reads (or --trust-list)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from access.clock import as_utc
from certificates import clients
from certificates import operations as cops
from certificates.models import AccessToken, Certificate, CertificateState, ExpiryNotice, UsedAssertion
from certificates.validation import load_trust_list
from tests.conftest import DEFAULT_NOW
from tests.functional.helpers import audit_since, last_audit_id
from tests.functional.test_oauth import Machines
from tests.pki import TestPKI


@pytest.fixture(scope="module")
def pki():
    return TestPKI(DEFAULT_NOW)


@pytest.fixture
def trust_path(pki, tmp_path, app):
    """The test PKI's trust list, configured as the portal's (TRUST_LIST), as the web reads it."""
    path = pki.write_trust_list(tmp_path / "trust")
    app.config["TRUST_LIST"] = str(path)
    return path


@pytest.fixture
def machines(world, pki, trust_path, clock) -> Machines:
    return Machines(world, pki, load_trust_list(trust_path), clock)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=list(args))

    return run


def _state(db_session, certificate) -> CertificateState:
    db_session.expire_all()
    return db_session.get(Certificate, certificate.id).state


def _active(db_session) -> int:
    return db_session.scalar(select(func.count()).select_from(Certificate)
                             .where(Certificate.state == CertificateState.ACTIVE))


# --- certificates recheck ------------------------------------------------------------------------


def test_recheck_revokes_a_certificate_its_ca_revoked(cli, machines, pki, trust_path, world, db_session):
    kept, _ = machines.certificate(world.employer())
    revoked, issued = machines.certificate(world.employer("Drukkerij Acht"))
    active = _active(db_session)
    pki.revoke(issued)
    pki.write_trust_list(trust_path.parent)  # the operator refreshes the CRL; the portal reads it again
    start = last_audit_id(db_session)

    result = cli("certificates", "recheck")

    assert result.exit_code == 0, result.output
    assert f"Checked {active} active certificate(s); 1 revoked by their CA." in result.output
    assert f"Revoked: {revoked.fingerprint} {revoked.subject} ({revoked.enterprise.kbo_display} Drukkerij Acht): " \
           "revoked by its CA" in result.output
    assert _state(db_session, revoked) is CertificateState.REVOKED
    assert _state(db_session, kept) is CertificateState.ACTIVE
    [record] = [r for r in audit_since(db_session, start) if r.action == "certificate.revoke"]
    assert (record.enterprise_id, record.actor_label, record.details["certificate_id"]) == \
        (revoked.enterprise_id, "cli", revoked.id)
    assert record.details["reason"].startswith("revoked by its CA")
    # Once revoked it is no longer active, so no longer re-checked.
    again = cli("certificates", "recheck")
    assert again.exit_code == 0 and f"Checked {active - 1} active certificate(s); 0 revoked" in again.output


def test_recheck_reads_the_trust_list_given_instead_of_the_configured_one(cli, machines, pki, trust_path, world,
                                                                         db_session, tmp_path):
    certificate, issued = machines.certificate(world.employer())
    pki.revoke(issued)
    # The configured list keeps its old CRL: the certificate passes there.
    result = cli("certificates", "recheck")
    assert result.exit_code == 0 and "0 revoked" in result.output, result.output
    assert _state(db_session, certificate) is CertificateState.ACTIVE
    fresh = pki.write_trust_list(tmp_path / "fresh")
    result = cli("certificates", "recheck", "--trust-list", str(fresh))
    assert result.exit_code == 0 and "1 revoked" in result.output, result.output
    assert _state(db_session, certificate) is CertificateState.REVOKED


def test_recheck_without_a_readable_trust_list_changes_nothing(cli, machines, world, db_session, tmp_path):
    certificate, _ = machines.certificate(world.employer())
    start = last_audit_id(db_session)
    result = cli("certificates", "recheck", "--trust-list", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "Cannot read the trust list" in result.output and "missing.toml" in result.output
    assert _state(db_session, certificate) is CertificateState.ACTIVE
    assert audit_since(db_session, start) == []


def test_recheck_without_revocation_information_is_reported_not_passed(cli, machines, world, db_session, tmp_path,
                                                                       trust_path, clock):
    """Hard-fail: a status that cannot be established (no or stale CRL) is neither "checked" nor silent."""
    certificate, _ = machines.certificate(world.employer())
    checked_before = db_session.get(Certificate, certificate.id).revocation_checked_at
    stale = tmp_path / "no-crl" / "trust_list.toml"
    stale.parent.mkdir()
    for name in ("root.pem", "qtsp.pem"):
        (stale.parent / name).write_bytes((trust_path.parent / name).read_bytes())
    stale.write_text('anchors = ["root.pem"]\nintermediates = ["qtsp.pem"]\n')
    start = last_audit_id(db_session)
    clock.advance(days=1)  # a stamp of this run would differ from the registration's

    result = cli("certificates", "recheck", "--trust-list", str(stale))

    assert result.exit_code == 1, result.output
    assert f"Status unknown: {certificate.fingerprint}" in result.output
    db_session.expire_all()
    again = db_session.get(Certificate, certificate.id)
    assert again.state is CertificateState.ACTIVE
    assert as_utc(again.revocation_checked_at) == as_utc(checked_before)
    failures = [r for r in audit_since(db_session, start) if r.action == "certificate.recheck_failed"]
    assert [(r.details["certificate_id"], r.outcome) for r in failures] == [(certificate.id, "failure")]


# --- certificates warn-expiry --------------------------------------------------------------------


def test_warn_expiry_writes_one_outbox_message_per_threshold(cli, machines, pki, world, clock, db_session):
    employer = world.employer("Brouwerij Negen")
    admin = world.local_admin(employer)
    issued = pki.seal(employer.kbo_number, employer.name, valid_until=DEFAULT_NOW + timedelta(days=20))
    certificate = cops.register_certificate(db_session, employer, issued.pem_with_chain, trust=machines.trust,
                                            by=world.ctx).certificate
    machines.certificate(world.employer())  # valid for a year: no warning yet
    world.commit()
    before = len(world.outbox_for(admin.person))

    def warn() -> str:
        result = cli("certificates", "warn-expiry")
        assert result.exit_code == 0, result.output
        return result.output.strip()

    assert warn() == "1 expiry warning(s) sent to the outbox."
    assert warn() == "0 expiry warning(s) sent to the outbox."  # each threshold once
    clock.advance(days=7)  # 13 days left: the 14-day warning
    assert warn() == "1 expiry warning(s) sent to the outbox."
    assert warn() == "0 expiry warning(s) sent to the outbox."

    messages = world.outbox_for(admin.person)[before:]
    assert [m.kind for m in messages] == ["certificate-expiry", "certificate-expiry"]
    assert "expires in 21 days" in messages[0].subject and "expires in 14 days" in messages[1].subject
    assert certificate.subject in messages[0].body
    db_session.expire_all()
    assert sorted(db_session.scalars(select(ExpiryNotice.days_before)
                                     .where(ExpiryNotice.certificate_id == certificate.id))) == [14, 30]


# --- oauth purge ---------------------------------------------------------------------------------


def test_purge_removes_only_expired_assertions_and_tokens(cli, machines, world, clock, db_session):
    machine = machines.client(world.employer())
    session = world.session
    now = DEFAULT_NOW
    clients.use_jti(session, machine.api_client, "old", now - timedelta(minutes=10))
    clients.use_jti(session, machine.api_client, "fresh", now + timedelta(minutes=2))
    clients.record_token(session, machine.api_client, clients.new_token_value(), ["dmfa"], lifetime=300,
                         by=world.ctx, now=now - timedelta(minutes=10))
    live = clients.record_token(session, machine.api_client, clients.new_token_value(), ["dmfa"], lifetime=300,
                                by=world.ctx, now=now)
    world.commit()
    start = last_audit_id(db_session)

    result = cli("oauth", "purge")

    assert result.exit_code == 0, result.output
    assert "Purged 1 used client assertion(s) and 1 expired access token(s)." in result.output
    db_session.expire_all()
    assert list(db_session.scalars(select(UsedAssertion.jti))) == ["fresh"]
    assert list(db_session.scalars(select(AccessToken.id))) == [live.id]
    [record] = audit_since(db_session, start)
    assert (record.action, record.actor_label, record.details["used_assertions"], record.details["access_tokens"]) \
        == ("oauth.purge", "cli", 1, 1)
    clock.advance(minutes=10)  # now the rest has expired too
    assert "Purged 1 used client assertion(s) and 1 expired access token(s)." in cli("oauth", "purge").output
    assert cli("oauth", "purge").output.strip() == "Purged 0 used client assertion(s) and 0 expired access token(s)."
