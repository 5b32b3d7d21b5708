"""Acceptance: the local administrator logs in the first time, sets his credentials and grants a right;
the user logs in and opens the application; another application is refused."""
from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from access.models import Right
from audit.models import AuditRecord
from tests.e2e import steps

pytestmark = [pytest.mark.e2e]

ADMIN_PASSWORD = "Kiezelsteen-Morgenrood-83"


def _log_in(page: Page, login: str, password: str) -> None:
    page.goto("/login")
    page.fill('main input[name="login"]', login)
    page.fill('main input[name="password"]', password)
    page.click('main form button[type="submit"]')


def _totp_code(e2e_sessions, login: str) -> str:
    return steps.current_code(e2e_sessions, login)


def _stylesheet_rules(page: Page) -> int:
    """CSS rules the page really applied (0 when portal.css did not load or the CSP blocked it)."""
    return page.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")


def test_admin_first_login_grants_right_user_opens_it_and_is_refused_another(
        page: Page, live_server, scenario, e2e_sessions, tmp_path):
    s = scenario
    home = live_server("/")
    matrix_path = f"/enterprises/{s.enterprise_id}/access"
    admin_username = f"wouter.admin{s.enterprise_id}"

    # --- the local administrator's first login: user-id + initial password, then his own credentials
    _log_in(page, s.admin_user_id, s.admin_initial_password)
    expect(page).to_have_url(live_server("/account/setup"))
    assert _stylesheet_rules(page) > 0, "portal.css did not load"
    page.goto(matrix_path)  # nothing else is reachable before he chose them
    expect(page).to_have_url(live_server("/account/setup"))

    page.fill('main input[name="username"]', admin_username)
    page.fill('main input[name="password"]', ADMIN_PASSWORD)
    page.fill('main input[name="confirm"]', ADMIN_PASSWORD)
    page.click('main form button[type="submit"]')
    expect(page.locator(".flash.success")).to_be_visible()

    # --- right after: a second factor, before anything else (issue 6)
    expect(page).to_have_url(live_server("/account/security"))
    expect(page.get_by_test_id("enrolment-required")).to_be_visible()
    page.goto(matrix_path)
    expect(page).to_have_url(live_server("/account/security"))
    page.get_by_test_id("totp-start").click()
    expect(page.get_by_test_id("totp-qr")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.fill('main input[name="code"]', "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click('main form button[type="submit"]')
    expect(page.locator('p.error[data-field="code"]')).to_be_visible()
    page.fill('main input[name="code"]', pyotp.TOTP(secret).now())  # as his phone shows it
    page.click('main form button[type="submit"]')
    expect(page.get_by_test_id("recovery-codes").locator("code")).to_have_count(10)
    page.screenshot(path=str(tmp_path / "0-recovery-codes.png"), full_page=True)
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page).to_have_url(home)
    expect(page.get_by_test_id("who")).to_contain_text(admin_username)
    expect(page.get_by_test_id("who")).to_contain_text(s.admin_full_name)

    # --- log out, log in again: password, then the code of the app
    page.click('header form[action="/logout"] button[type="submit"]')
    _log_in(page, admin_username, ADMIN_PASSWORD)
    expect(page).to_have_url(re.compile(r"/login/verify"))
    page.fill('main input[name="code"]', _totp_code(e2e_sessions, admin_username))
    page.click('main form[data-testid="second-factor-form"] button[type="submit"]')
    expect(page).to_have_url(home)
    expect(page.get_by_test_id("who")).to_contain_text(admin_username)

    # --- "Manage users and rights": the matrix; grant DmfA to the user
    page.click(f'main a[href="{matrix_path}"]')
    expect(page).to_have_url(live_server(matrix_path))
    matrix = page.get_by_test_id("matrix")
    expect(matrix).to_be_visible()
    row = matrix.locator(f'tr[data-person="{s.user_person_id}"]')
    expect(row).to_have_count(1)
    expect(row.locator('button.not-granted[data-right="asr"]')).to_have_count(1)
    row.locator('button.not-granted[data-right="dmfa"]').click()
    expect(page).to_have_url(live_server(matrix_path))  # post/redirect/get
    expect(row.locator('button.granted[data-right="dmfa"]')).to_have_count(1)
    expect(row.locator('button[data-right="dmfa"]')).to_have_attribute("aria-label", re.compile(r"^Revoke .*DmfA"))
    expect(row.locator('button.not-granted[data-right="asr"]')).to_have_count(1)
    page.screenshot(path=str(tmp_path / "1-matrix-after-grant.png"), full_page=True)

    # --- log out with the header's button
    page.click('header form[action="/logout"] button[type="submit"]')
    expect(page).to_have_url(home)
    expect(page.get_by_test_id("who")).to_have_count(0)
    expect(page.locator('header a[href="/login"]')).to_be_visible()

    # --- the user (his first second factor too): DmfA on his dashboard, ASR not
    _log_in(page, s.user_username, s.user_password)
    steps.second_step(page, e2e_sessions, s.user_username)
    expect(page).to_have_url(home)
    expect(page.get_by_test_id("who")).to_contain_text(s.user_username)
    expect(page.locator('a[data-app="dmfa"]')).to_have_count(1)
    expect(page.locator('a[data-app="asr"]')).to_have_count(0)
    page.screenshot(path=str(tmp_path / "2-user-dashboard.png"), full_page=True)

    # --- he opens DmfA: the page names the right and who granted it
    page.click('a[data-app="dmfa"]')
    expect(page).to_have_url(live_server(f"/enterprises/{s.enterprise_id}/apps/dmfa"))
    expect(page.get_by_test_id("app-title")).to_contain_text("DmfA")
    path = page.get_by_test_id("access-path")
    expect(path).to_contain_text("DmfA")
    expect(path).to_contain_text(f"granted by {s.admin_full_name}")
    page.screenshot(path=str(tmp_path / "3-dmfa-opened.png"), full_page=True)

    # --- ASR is refused, with the reason
    response = page.goto(f"/enterprises/{s.enterprise_id}/apps/asr")
    assert response is not None and response.status == 403
    reason = page.get_by_test_id("deny-reason")
    expect(reason).to_contain_text("no right")
    expect(reason).to_contain_text("ASR")
    expect(page.get_by_test_id("access-path")).to_have_count(0)
    assert _stylesheet_rules(page) > 0, "portal.css did not load on the error page"
    page.screenshot(path=str(tmp_path / "4-asr-refused.png"), full_page=True)

    assert page.console_errors == [], f"browser console errors: {page.console_errors}"

    # --- what the database kept
    with e2e_sessions() as session:
        rights = session.scalars(select(Right).where(
            Right.enterprise_id == s.enterprise_id, Right.person_id == s.user_person_id)).all()
        assert [(r.application, r.granted_by_id, r.revoked_at) for r in rights] == [
            ("dmfa", s.admin_person_id, None)]

        decisions = session.scalars(select(AuditRecord).where(
            AuditRecord.actor_person_id == s.user_person_id, AuditRecord.action == "decision:open",
            AuditRecord.enterprise_id == s.enterprise_id).order_by(AuditRecord.id)).all()
        assert [(d.application, d.outcome) for d in decisions] == [("dmfa", "allowed"), ("asr", "denied")]
        allowed, denied = decisions
        assert any("DmfA" in step and s.admin_full_name in step for step in allowed.path), allowed.path
        assert denied.reason and "no right" in denied.reason, denied.reason
        assert allowed.ip == "127.0.0.1" and "Chrome" in (allowed.user_agent or "")

        grants = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "right.grant", AuditRecord.enterprise_id == s.enterprise_id)).all()
        assert [(g.actor_person_id, g.application, g.outcome) for g in grants] == [
            (s.admin_person_id, "dmfa", "success")]
        assert session.scalar(select(AuditRecord.id).where(
            AuditRecord.action == "account.choose_credentials",
            AuditRecord.actor_person_id == s.admin_person_id)) is not None


def test_a_person_sees_his_sessions_and_ends_another(browser, page: Page, live_server, scenario, e2e_sessions):
    """Two browsers of one person: the first lists both sessions and ends the second, which is logged out."""
    s = scenario
    steps.log_in(page, e2e_sessions, s.user_username, s.user_password)
    other_context = browser.new_context(base_url=live_server.url, locale="en-US", user_agent="Mozilla/5.0 "
                                        "(Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0")
    try:
        other = other_context.new_page()
        steps.log_in(other, e2e_sessions, s.user_username, s.user_password)

        page.get_by_test_id("my-sessions").click()
        rows = page.get_by_test_id("session-row")
        expect(rows).to_have_count(2)
        expect(page.get_by_test_id("this-session")).to_have_count(1)
        expect(page.get_by_test_id("sessions")).to_contain_text("Firefox / Windows")
        page.get_by_test_id("end-session").click()
        expect(page.locator(".flash.success")).to_be_visible()
        expect(page.get_by_test_id("session-row")).to_have_count(1)

        other.goto("/account/sessions")
        expect(other).to_have_url(re.compile(r"/login"))
        expect(other.get_by_test_id("who")).to_have_count(0)
    finally:
        other_context.close()
    assert page.console_errors == [], f"browser console errors: {page.console_errors}"
