"""Acceptance (issue 4): the local administrator registers a qualified seal certificate and sees every check
with its outcome; a certificate naming another KBO number is refused with the failed check, and nothing of
it is stored."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from audit.models import AuditRecord
from certificates.models import Certificate

from tests.e2e import steps

pytestmark = [pytest.mark.e2e]

PASSWORD = "Zegelwas-Lakstempel-27"
CHECKS = ["chain", "validity", "key_usage", "key_strength", "signature_hash", "revocation", "qc_compliance",
          "qc_type", "policy", "identity", "unique"]
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Seeded:
    enterprise_id: int
    kbo: str
    admin: str
    other_kbo: str


@pytest.fixture
def seeded(e2e_sessions) -> Seeded:
    """An employer with its local administrator (own credentials), and another enterprise's KBO number."""
    from access import operations as ops
    from access.models import LinkKind
    from access.validators import make_insz, make_kbo, make_rsz
    from audit.operations import CLI_CONTEXT
    from examples.demo import set_own_credentials

    n = next(_numbers)
    with e2e_sessions.begin() as session:
        enterprise = ops.register_enterprise(
            session, kbo=make_kbo(4_700_000 + n), rsz_number=make_rsz(1_700_000 + n),
            name=f"Glasblazerij Het Zegel {n}", street="Kaai 3", postal_code="2000", city="Antwerpen",
            legal_form="BV", joint_committee="200", by=CLI_CONTEXT)
        admin = ops.record_person(session, insz=make_insz("790505", 600 + n), first_name="Ilse",
                                  last_name=f"Zegers{n}", email=None, by=CLI_CONTEXT)
        ops.add_link(session, enterprise, admin, LinkKind.ZAAKVOERDER, date(2015, 1, 1), by=CLI_CONTEXT)
        ops.appoint_local_admin(session, enterprise, admin, by=CLI_CONTEXT)
        login = f"ilse.e2e{n}"
        set_own_credentials(session, admin, login, PASSWORD)
        return Seeded(enterprise.id, enterprise.kbo_number, login, make_kbo(4_710_000 + n))


def _log_in(page: Page, login: str, e2e_sessions) -> None:
    steps.log_in(page, e2e_sessions, login, PASSWORD)


def _upload(page: Page, name: str, content: bytes) -> None:
    form = page.get_by_test_id("register-form")
    form.locator('input[name="certificate"]').set_input_files(
        {"name": name, "mimeType": "application/x-pem-file", "buffer": content})
    form.locator('button[type="submit"]').click()


def _certificates(e2e_sessions, enterprise_id: int) -> list[Certificate]:
    with e2e_sessions() as session:
        return list(session.scalars(select(Certificate).where(Certificate.enterprise_id == enterprise_id)))


def test_register_a_certificate_and_see_every_check(page: Page, live_server, seeded, e2e_pki, e2e_sessions,
                                                     tmp_path):
    _log_in(page, seeded.admin, e2e_sessions)
    page.get_by_test_id(f"enterprise-{seeded.kbo}").get_by_test_id("certificates-link").click()
    expect(page.get_by_test_id("certificates")).to_contain_text("No certificate is registered")

    # --- a qualified seal certificate of this enterprise, with its chain: every check OK
    seal = e2e_pki.seal(seeded.kbo, "Glasblazerij Het Zegel")
    _upload(page, "seal.pem", seal.pem_with_chain)
    checks = page.get_by_test_id("checks")
    expect(checks).to_have_attribute("data-outcome", "registered")
    for code in CHECKS:
        expect(page.get_by_test_id(f"outcome-{code}")).to_have_text("OK")
    [registered] = _certificates(e2e_sessions, seeded.enterprise_id)
    expect(page.get_by_test_id(f"fingerprint-{registered.id}")).to_have_text(registered.fingerprint)
    page.screenshot(path=str(tmp_path / "1-registered.png"), full_page=True)

    # --- a certificate naming another KBO number: refused, the failed check shown, nothing stored
    wrong = e2e_pki.seal(seeded.other_kbo, "Iemand Anders")
    _upload(page, "wrong.pem", wrong.pem_with_chain)
    expect(page.get_by_test_id("checks")).to_have_attribute("data-outcome", "refused")
    expect(page.get_by_test_id("refusal")).to_contain_text("Identity")
    expect(page.get_by_test_id("outcome-identity")).to_have_text("Failed")
    expect(page.locator('[data-check="identity"][data-ok="false"]')).to_contain_text(f"NTRBE-{seeded.other_kbo}")
    for code in CHECKS:
        if code != "identity":
            expect(page.get_by_test_id(f"outcome-{code}")).to_have_text("OK")
    page.screenshot(path=str(tmp_path / "2-refused.png"), full_page=True)
    assert page.console_errors == []

    assert [c.id for c in _certificates(e2e_sessions, seeded.enterprise_id)] == [registered.id]
    with e2e_sessions() as session:
        refusals = session.scalars(select(AuditRecord).where(
            AuditRecord.enterprise_id == seeded.enterprise_id, AuditRecord.action == "certificate.refuse")).all()
        assert len(refusals) == 1 and refusals[0].outcome == "failure"
        assert "identity" in refusals[0].reason
