"""Acceptance (issue 5): the local administrator starts an access review from his dashboard, confirms one
user's right and revokes another's; his security officer follows the campaign but is shown no revoke
button. (The deadline run is tests/functional/test_access_reviews.py: it needs a clock that moves.)"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.e2e import steps

pytestmark = [pytest.mark.e2e]

PASSWORD = "Lindeboom-Kanaal-29"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class World:
    employer_id: int
    admin: str
    officer: str
    keeper: str    # the user whose right is confirmed
    leaver: str    # the user whose right is revoked
    leaver_id: int


@pytest.fixture
def world(e2e_sessions) -> World:
    from access import operations as ops
    from access import security_officers as sec
    from access.catalogue import load_catalogue
    from access.models import LinkKind, Role
    from access.validators import make_insz, make_kbo, make_rsz
    from audit.operations import CLI_CONTEXT
    from examples.demo import set_own_credentials

    n = next(_numbers)
    with e2e_sessions.begin() as session:
        employer = ops.register_enterprise(session, kbo=make_kbo(4_930_000 + n), rsz_number=make_rsz(1_930_000 + n),
                                           name=f"Schrijnwerkerij Eik {n}", street="Dorp 3", postal_code="3000",
                                           city="Leuven", legal_form="BV", joint_committee="124", by=CLI_CONTEXT)

        def person(serial, first, last, kind=LinkKind.WERKNEMER):
            p = ops.record_person(session, insz=make_insz("770707", 700 + 10 * n + serial), first_name=first,
                                  last_name=last, email=None, by=CLI_CONTEXT)
            ops.add_link(session, employer, p, kind, date(2018, 3, 1), by=CLI_CONTEXT)
            return p

        admin = person(1, "Mark", f"Schaaf{n}", LinkKind.ZAAKVOERDER)
        officer = person(2, "Nora", f"Toezicht{n}")
        keeper = person(3, "Piet", f"Blijft{n}")
        leaver = person(4, "Roos", f"Vertrekt{n}")
        ops.appoint_local_admin(session, employer, admin, by=CLI_CONTEXT)
        admin_login, officer_login = f"mark.e2e{n}", f"nora.e2e{n}"
        set_own_credentials(session, admin, admin_login, PASSWORD)
        as_admin = CLI_CONTEXT.as_actor(admin.id, admin_login)
        for user in (keeper, leaver):
            ops.designate(session, employer, user, Role.USER, by=as_admin)
            ops.grant_right(session, employer, user, "dmfa", catalogue=load_catalogue(), by=as_admin)
        sec.appoint_enterprise_officer(session, employer, officer, by=as_admin)
        set_own_credentials(session, officer, officer_login, PASSWORD)
        return World(employer.id, admin_login, officer_login, keeper.full_name, leaver.full_name, leaver.id)


def log_in(page: Page, login: str, e2e_sessions) -> None:
    steps.log_in(page, e2e_sessions, login, PASSWORD)


def test_the_administrator_starts_a_review_and_answers_it(page: Page, live_server, world, e2e_sessions):
    from access.models import Right

    log_in(page, world.admin, e2e_sessions)
    page.get_by_test_id("access-reviews-link").click()
    deadline = (date.today() + timedelta(days=21)).isoformat()
    page.get_by_label("Last day to answer").fill(deadline)
    page.get_by_label("Revoke what is still unanswered after that day").check()
    page.get_by_role("button", name="Start the review").click()
    expect(page.locator("p.flash")).to_contain_text(f"2 items to answer by {deadline}")
    expect(page.get_by_test_id("progress")).to_contain_text("0 of 2 answered")

    keeper = page.locator("tr[data-kind=right]", has_text=world.keeper)
    keeper.get_by_label("Note").fill("still makes the declarations")
    keeper.get_by_role("button", name="Confirm").click()
    expect(page.locator("p.flash")).to_contain_text("confirmed")
    page.locator("tr[data-kind=right]", has_text=world.leaver).get_by_role("button", name="Revoke").click()
    expect(page.locator("p.flash")).to_contain_text("revoked")
    expect(page.get_by_test_id("progress")).to_contain_text("2 of 2 answered")
    expect(page.locator("tr[data-kind=right]", has_text=world.keeper)).to_contain_text("still makes the declarations")
    assert page.console_errors == []
    with e2e_sessions() as session:
        assert session.scalar(select(Right.revoked_at).where(
            Right.person_id == world.leaver_id, Right.enterprise_id == world.employer_id)) is not None


def test_the_security_officer_follows_the_review_without_revoking(page: Page, live_server, world, e2e_sessions):
    from access.clock import today
    from access.models import Enterprise
    from audit.operations import CLI_CONTEXT
    from reviews.operations import start_review

    with e2e_sessions.begin() as session:
        start_review(session, session.get(Enterprise, world.employer_id), deadline=today() + timedelta(days=7),
                     revoke_unanswered=False, by=CLI_CONTEXT)
    log_in(page, world.officer, e2e_sessions)
    page.get_by_test_id(f"access-reviews-officer-link-{world.employer_id}").click()
    page.get_by_role("link", name="Answer it").click()
    row = page.locator("tr[data-kind=right]", has_text=world.leaver)
    expect(row.get_by_role("button", name="Confirm")).to_be_visible()
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(row).to_contain_text("Only an administrator revokes this.")
    row.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("progress")).to_contain_text("1 of 2 answered")
    assert page.console_errors == []
