"""Acceptance (issue 3): the employer's local administrator files the provider form, the provider's local
administrator accepts it and assigns a staff member, who acts for that employer and is refused for another."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from audit.models import AuditRecord
from mandates.models import Mandate, MandateStatus

from tests.e2e import steps

pytestmark = [pytest.mark.e2e]

PASSWORD = "Waterlelie-Zeedijk-61"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class World:
    employer_id: int
    employer_name: str
    other_employer_id: int
    provider_id: int
    provider_kbo: str
    employer_admin: str
    provider_admin: str
    staff: str
    staff_person_id: int


@pytest.fixture
def world(e2e_sessions) -> World:
    from access import operations as ops
    from access.models import LinkKind, Role
    from access.validators import make_insz, make_kbo, make_rsz
    from audit.operations import CLI_CONTEXT
    from examples.demo import set_own_credentials
    from mandates import operations as mops
    from mandates.models import ProviderKind

    n = next(_numbers)

    def enterprise(body, name, employer=True, rsz=0):
        return ops.register_enterprise(
            session, kbo=make_kbo(body), rsz_number=make_rsz(rsz) if employer else None, name=name,
            street="Markt 1", postal_code="9000", city="Gent", legal_form="BV",
            joint_committee="200" if employer else None, by=CLI_CONTEXT)

    def person(enterprise_, serial, first, last, username, kind=LinkKind.WERKNEMER):
        p = ops.record_person(session, insz=make_insz("850101", 400 + 10 * n + serial), first_name=first,
                              last_name=last, email=None, by=CLI_CONTEXT)
        ops.add_link(session, enterprise_, p, kind, date(2018, 1, 1), by=CLI_CONTEXT)
        return p, username

    with e2e_sessions.begin() as session:
        employer = enterprise(4_600_000 + n, f"Schrijnwerkerij De Zaag {n}", rsz=1_600_000 + n)
        other = enterprise(4_610_000 + n, f"Bloemisterij Lelie {n}", rsz=1_610_000 + n)
        firm = enterprise(4_620_000 + n, f"Boekhoudkantoor Cijfer {n}", employer=False)
        provider = mops.register_provider(session, firm, ProviderKind.ACCOUNTANT, by=CLI_CONTEXT)
        marie, marie_login = person(employer, 1, "Marie", f"Zaagman{n}", f"marie.e2e{n}", LinkKind.ZAAKVOERDER)
        pieter, pieter_login = person(firm, 2, "Pieter", f"Cijfer{n}", f"pieter.e2e{n}", LinkKind.ZAAKVOERDER)
        sara, sara_login = person(firm, 3, "Sara", f"Boekers{n}", f"sara.e2e{n}")
        for enterprise_, admin, login in ((employer, marie, marie_login), (firm, pieter, pieter_login)):
            ops.appoint_local_admin(session, enterprise_, admin, by=CLI_CONTEXT)
            set_own_credentials(session, admin, login, PASSWORD)
        ops.designate(session, firm, sara, Role.USER, by=CLI_CONTEXT.as_actor(pieter.id, pieter_login))
        set_own_credentials(session, sara, sara_login, PASSWORD)
        return World(employer.id, employer.name, other.id, firm.id, firm.kbo_display, marie_login, pieter_login,
                     sara_login, sara.id)


def _log_in(page: Page, login: str, e2e_sessions) -> None:
    steps.log_in(page, e2e_sessions, login, PASSWORD)


def _log_out(page: Page) -> None:
    page.click('header form[action="/logout"] button[type="submit"]')
    expect(page.get_by_test_id("who")).to_have_count(0)


def test_form_filed_accepted_and_staff_acts_only_for_that_employer(page: Page, live_server, world, e2e_sessions,
                                                                    tmp_path):
    w = world
    # --- the employer's local administrator files the provider form
    _log_in(page, w.employer_admin, e2e_sessions)
    page.goto(f"/enterprises/{w.employer_id}/providers")
    form = page.get_by_test_id("provider-form")
    form.locator('input[name="provider_kbo"]').fill(w.provider_kbo)
    form.locator('select[name="start_date"]').select_option(index=0)  # the current quarter
    form.locator('input[name="groups"][value="dmfa_dimona"]').check()
    form.locator('input[name="contract_date"]').fill("2026-09-15")
    form.locator('input[name="contract_reference"]').fill("OPD-2026-44")
    form.locator('input[name="contract_declared"]').check()
    form.locator('button[type="submit"]').click()
    expect(page.get_by_test_id("providers")).to_contain_text("Boekhoudkantoor Cijfer")
    page.screenshot(path=str(tmp_path / "1-form-filed.png"), full_page=True)
    _log_out(page)

    with e2e_sessions() as session:
        mandate = session.scalar(select(Mandate).where(Mandate.employer_id == w.employer_id))
        assert mandate.status is MandateStatus.PENDING

    # --- the provider's local administrator accepts it and assigns Sara to DmfA for that client
    _log_in(page, w.provider_admin, e2e_sessions)
    page.goto(f"/enterprises/{w.provider_id}/clients")
    page.get_by_test_id(f"accept-{mandate.id}").click()
    client = page.get_by_test_id(f"client-{mandate.id}")
    expect(client).to_be_visible()
    client.locator(f'tr[data-person="{w.staff_person_id}"] button.not-granted[data-assign="dmfa"]').click()
    client = page.get_by_test_id(f"client-{mandate.id}")
    expect(client.locator(f'tr[data-person="{w.staff_person_id}"] button.granted[data-assign="dmfa"]')) \
        .to_have_count(1)
    page.screenshot(path=str(tmp_path / "2-accepted-and-assigned.png"), full_page=True)
    _log_out(page)

    # --- the staff member picks the client, acts for it (banner on every page) and opens DmfA
    _log_in(page, w.staff, e2e_sessions)
    page.goto("/work-for")
    expect(page.get_by_test_id("clients")).to_contain_text(w.employer_name)
    expect(page.get_by_test_id("clients")).not_to_contain_text("Bloemisterij")
    page.get_by_test_id(f"act-for-{w.employer_id}").click()
    expect(page.get_by_test_id("acting-banner")).to_contain_text(w.employer_name)
    page.goto(f"/enterprises/{w.employer_id}/apps/dmfa")
    expect(page.get_by_test_id("acting-banner")).to_contain_text(w.employer_name)
    expect(page.locator("main")).to_contain_text("DmfA")
    page.screenshot(path=str(tmp_path / "3-acting.png"), full_page=True)

    # --- and is refused for an employer that does not mandate his provider, with the reason
    response = page.goto(f"/enterprises/{w.other_employer_id}/apps/dmfa")
    assert response.status == 403
    expect(page.get_by_test_id("deny-reason")).to_be_visible()
    assert page.console_errors == []

    with e2e_sessions() as session:
        opened = session.scalars(select(AuditRecord).where(
            AuditRecord.enterprise_id == w.employer_id, AuditRecord.action == "decision:open",
            AuditRecord.outcome == "allowed")).all()
        assert opened and all(r.provider_enterprise_id == w.provider_id for r in opened)
