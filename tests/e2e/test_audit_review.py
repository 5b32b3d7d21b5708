"""Acceptance (issue 5): the local administrator appoints a security officer; she opens the audit trail
from her dashboard, filters it, exports the filtered records as CSV, opens a record with its decision path
and before/after, and is refused another enterprise's records."""
from __future__ import annotations

import csv
import itertools
import re
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from audit.models import AuditRecord

from tests.e2e import steps

pytestmark = [pytest.mark.e2e]

PASSWORD = "Kerselaar-Duinpad-73"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class World:
    employer_id: int
    employer_name: str
    other_id: int
    admin: str
    officer: str
    officer_person_id: int
    user_name: str
    n: int


@pytest.fixture
def world(e2e_sessions) -> World:
    from access import operations as ops
    from access.catalogue import load_catalogue
    from access.models import LinkKind, Role
    from access.validators import make_insz, make_kbo, make_rsz
    from audit.operations import CLI_CONTEXT
    from examples.demo import set_own_credentials

    n = next(_numbers)
    with e2e_sessions.begin() as session:
        def enterprise(body, name, rsz):
            return ops.register_enterprise(session, kbo=make_kbo(body), rsz_number=make_rsz(rsz), name=name,
                                           street="Markt 1", postal_code="9000", city="Gent", legal_form="BV",
                                           joint_committee="200", by=CLI_CONTEXT)

        def person(enterprise_, serial, first, last, kind=LinkKind.WERKNEMER):
            p = ops.record_person(session, insz=make_insz("880202", 600 + 10 * n + serial), first_name=first,
                                  last_name=last, email=None, by=CLI_CONTEXT)
            ops.add_link(session, enterprise_, p, kind, date(2019, 1, 1), by=CLI_CONTEXT)
            return p

        employer = enterprise(4_800_000 + n, f"Brouwerij De Hop {n}", 1_800_000 + n)
        other = enterprise(4_810_000 + n, f"Slagerij Ossenhaas {n}", 1_810_000 + n)
        admin = person(employer, 1, "Jef", f"Brouwer{n}", LinkKind.ZAAKVOERDER)
        officer = person(employer, 2, "Ines", f"Waakzaam{n}")
        user = person(employer, 3, "Pol", f"Tapper{n}")
        other_admin = person(other, 4, "Rik", f"Slager{n}", LinkKind.ZAAKVOERDER)
        ops.appoint_local_admin(session, employer, admin, by=CLI_CONTEXT)
        ops.appoint_local_admin(session, other, other_admin, by=CLI_CONTEXT)
        admin_login, officer_login = f"jef.e2e{n}", f"ines.e2e{n}"
        set_own_credentials(session, admin, admin_login, PASSWORD)
        as_admin = CLI_CONTEXT.as_actor(admin.id, admin_login)
        ops.designate(session, employer, user, Role.USER, by=as_admin)
        ops.grant_right(session, employer, user, "dmfa", catalogue=load_catalogue(), by=as_admin)
        ops.designate(session, employer, officer, Role.USER, by=as_admin)  # a user who becomes officer too
        set_own_credentials(session, officer, officer_login, PASSWORD)
        return World(employer.id, employer.name, other.id, admin_login, officer_login, officer.id, user.full_name,
                     n)


def _log_in(page: Page, login: str, e2e_sessions) -> None:
    steps.log_in(page, e2e_sessions, login, PASSWORD)


def _log_out(page: Page) -> None:
    page.click('header form[action="/logout"] button[type="submit"]')
    expect(page.get_by_test_id("who")).to_have_count(0)


def test_officer_filters_and_opens_a_record(page: Page, live_server, world, e2e_sessions, tmp_path):
    w = world
    # --- the local administrator appoints Ines security officer (she stays a user)
    _log_in(page, w.admin, e2e_sessions)
    page.goto("/")
    page.get_by_test_id("security-officers-link").first.click()
    page.select_option('main select[name="person_id"]', str(w.officer_person_id))
    page.click('main form button[type="submit"]:has-text("Appoint")')
    expect(page.get_by_test_id("security-officers")).to_contain_text("Ines")
    _log_out(page)

    # --- Ines opens the trail from her dashboard, filters on the rights granted, opens the record
    _log_in(page, w.officer, e2e_sessions)
    page.get_by_test_id(f"audit-link-{w.employer_id}").click()
    records = page.get_by_test_id("audit-records")
    expect(records).to_contain_text(w.employer_name)
    form = page.get_by_test_id("audit-filter")
    form.locator('input[name="action"]').fill("right.grant")
    form.locator('select[name="outcome"]').select_option("success")
    page.get_by_test_id("apply-filter").click()
    expect(page).to_have_url(re.compile(r"action=right\.grant"))
    rows = page.locator('[data-testid="audit-records"] tbody tr[data-record]')
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("right.grant")
    page.screenshot(path=str(tmp_path / "1-filtered.png"), full_page=True)

    # --- she exports the filtered records as CSV: the same record, with names next to the ids
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert re.fullmatch(r"audit-records-\d{4}-\d{2}-\d{2}-\d{4}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as exported:
        exported_rows = list(csv.DictReader(exported))
    assert [(r["action"], r["outcome"], r["enterprise_name"], r["actor_name"]) for r in exported_rows] == [
        ("right.grant", "success", w.employer_name, f"Jef Brouwer{w.n}")]
    assert exported_rows[0]["id"] == rows.first.get_attribute("data-record")
    rows.first.locator("a").first.click()
    expect(page.get_by_test_id("record-enterprise")).to_contain_text(w.employer_name)
    expect(page.get_by_test_id("record-after")).to_contain_text('"right": true')
    expect(page.get_by_test_id("record-actor")).to_contain_text("Jef")
    page.screenshot(path=str(tmp_path / "2-record.png"), full_page=True)

    # --- her own review decisions show their path
    page.goto(f"/audit?enterprise={w.employer_id}&action=decision:review")
    page.locator('[data-testid="audit-records"] tbody tr[data-record] a').first.click()
    expect(page.get_by_test_id("record-path")).to_contain_text("security officer of")

    # --- another enterprise's records: refused, with the reason
    response = page.goto(f"/audit?enterprise={w.other_id}")
    assert response.status == 403
    expect(page.get_by_test_id("deny-reason")).to_contain_text("not a security officer")
    assert page.console_errors == []

    with e2e_sessions() as session:
        refused = session.scalars(select(AuditRecord).where(
            AuditRecord.enterprise_id == w.other_id, AuditRecord.action == "decision:review")).all()
        assert [r.outcome for r in refused] == ["denied"]
        [exported] = session.scalars(select(AuditRecord).where(
            AuditRecord.enterprise_id == w.employer_id, AuditRecord.action == "audit.export")).all()
        assert exported.details == {"format": "csv", "rows": 1, "confirmed": False, "cap": 100_000, "filter": {
            "enterprise": str(w.employer_id), "action": "right.grant", "outcome": "success"}}
